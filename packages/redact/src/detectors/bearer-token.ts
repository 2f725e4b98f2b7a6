import type { Detector } from './detector.js';

/** `Bearer <token>` anywhere, e.g. a header value printed on its own. */
export const bearerToken: Detector = {
  id: 'bearer-token',
  description: 'Bearer token outside an Authorization header',
  keywords: ['bearer'],
  caseInsensitiveKeywords: true,
  pattern: /(?<![A-Za-z0-9])bearer\s{1,8}(?<secret>[A-Za-z0-9._~+/-]{16,4096}={0,2})/gi,
  maxLength: 4120,
  span: /[A-Za-z0-9._~+/=\s-]/,
  partial: /^bearer(?:\s{1,8}[A-Za-z0-9._~+/-]{0,4096}={0,2})?$/i,
  minEntropy: 3,
};
