import type { Detector } from './detector.js';

/** Google API keys (Maps, Gemini, Firebase…): `AIza` + 35 characters. */
export const googleApiKey: Detector = {
  id: 'google-api-key',
  description: 'Google API key (AIza…)',
  keywords: ['AIza'],
  pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g,
  maxLength: 39,
  span: /[0-9A-Za-z_-]/,
  minEntropy: 3.5,
};
