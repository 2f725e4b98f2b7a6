import type { Detector } from './detector.js';

/**
 * The credential of an `Authorization` / `Proxy-Authorization` header, in
 * HTTP, curl, JSON or YAML spelling, whatever the scheme (Bearer, Basic, …).
 */
export const authorizationHeader: Detector = {
  id: 'authorization-header',
  description: 'Credential in an Authorization header (Bearer, Basic, Token, …)',
  keywords: ['authorization'],
  caseInsensitiveKeywords: true,
  pattern:
    /authorization["']?\s{0,8}[:=]\s{0,8}["']?(?:(?:bearer|basic|token|digest|apikey|bot|sso-key|key)\s{1,8})?(?<secret>[A-Za-z0-9._~+/=:-]{8,4096})/gi,
  maxLength: 4140,
  span: /[A-Za-z0-9._~+/=:\s"'-]/,
  partial:
    /^authorization["']?\s{0,8}(?:[:=]\s{0,8}["']?(?:[A-Za-z0-9._~+/=:-]{0,4096}|[A-Za-z-]{1,16}\s{1,8}[A-Za-z0-9._~+/=:-]{0,4096}))?$/i,
  minEntropy: 2.5,
};
