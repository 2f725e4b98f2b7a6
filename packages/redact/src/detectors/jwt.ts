import type { Detector } from './detector.js';
import { decodeBase64Url } from './detector-checks.js';

/** A JWT's header must decode to a JSON object naming an algorithm. */
function jwtStructureIsValid(token: string): boolean {
  const header = decodeBase64Url(token.slice(0, token.indexOf('.')));
  if (header === undefined) return false;
  try {
    const parsed: unknown = JSON.parse(header);
    return typeof parsed === 'object' && parsed !== null && typeof (parsed as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

/** JSON Web Tokens (JWS compact form), signed or not. */
export const jwt: Detector = {
  id: 'jwt',
  description: 'JSON Web Token whose header decodes',
  keywords: ['eyJ'],
  pattern:
    /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,1000}\.eyJ[A-Za-z0-9_-]{2,4000}\.[A-Za-z0-9_-]{0,1000}(?![A-Za-z0-9_-])/g,
  maxLength: 6010,
  span: /[A-Za-z0-9_.-]/,
  validate: jwtStructureIsValid,
};
