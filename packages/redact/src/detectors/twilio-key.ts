import type { Detector } from './detector.js';

/** Twilio API key SIDs (`SK` + 32 hex) — the key's secret travels with it. */
export const twilioKey: Detector = {
  id: 'twilio-key',
  description: 'Twilio API key (SK + 32 hex)',
  // 'SK' + the first hex digit: a 3-character keyword is far more selective than 'SK'.
  keywords: [...'0123456789abcdef'].map((h) => `SK${h}`),
  pattern: /(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])/g,
  maxLength: 34,
  span: /[0-9a-fSK]/,
  minEntropy: 3,
};
