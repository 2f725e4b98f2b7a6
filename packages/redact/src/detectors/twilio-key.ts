import type { Detector } from './detector.js';

/** Twilio API key SIDs (`SK` + 32 hex) — the key's secret travels with it. */
export const twilioKey: Detector = {
  id: 'twilio-key',
  description: 'Twilio API key (SK + 32 hex)',
  keywords: ['SK'],
  pattern: /(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])/g,
  maxLength: 34,
  span: /[0-9a-fSK]/,
  minEntropy: 3,
};
