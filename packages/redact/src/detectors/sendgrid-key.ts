import type { Detector } from './detector.js';

/** SendGrid API keys: `SG.` + 22 + `.` + 43 characters. */
export const sendgridKey: Detector = {
  id: 'sendgrid-key',
  description: 'SendGrid API key (SG.…)',
  keywords: ['SG.'],
  pattern: /(?<![A-Za-z0-9_-])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g,
  maxLength: 69,
  span: /[A-Za-z0-9_.-]/,
  minEntropy: 3.5,
};
