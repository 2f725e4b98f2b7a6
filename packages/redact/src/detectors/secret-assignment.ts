import type { Detector } from './detector.js';
import { isIdentifierLike } from './detector-checks.js';

/**
 * `password=…`, `api_key: "…"`, `CLIENT_SECRET=…` and the like, with a value
 * random enough to be a credential. Identifiers that only look random (UUIDs,
 * digests), code references and placeholders are filtered by the redactor's
 * shared checks and by `validate`.
 */
export const secretAssignment: Detector = {
  id: 'secret-assignment',
  description: 'High-entropy value assigned to a password / secret / token / api_key name',
  keywords: [
    'password',
    'passwd',
    'pwd',
    'secret',
    'apikey',
    'api_key',
    'api-key',
    'token',
    'private_key',
    'private-key',
    'privatekey',
  ],
  caseInsensitiveKeywords: true,
  pattern:
    /(?:password|passwd|pwd|secret(?:[_-]?key)?|api[_-]?key|token|private[_-]?key)["']?\s{0,8}[:=]{1,2}\s{0,8}["']?(?<secret>[^\s"'`,;&<>()[\]{}\\]{8,256})/gi,
  maxLength: 290,
  span: /[^\r\n]/,
  partial:
    /^(?:password|passwd|pwd|secret(?:[_-]?(?:k(?:ey?)?)?)?|api[_-]?key|token|private[_-]?key)["']?\s{0,8}(?:[:=]{1,2}\s{0,8}["']?[^\s"'`,;&<>()[\]{}\\]{0,256})?$/i,
  minEntropy: 3,
  validate: (value) =>
    !isIdentifierLike(value) &&
    !/^\d+$/.test(value) &&
    !/^(?:true|false|null|none|undefined|required|optional)$/i.test(value) &&
    // a reference to where the secret lives is not the secret: process.env.X, os.environ, settings.API_KEY
    !/^(?:[A-Za-z_$][A-Za-z0-9_$]*\.)+[A-Za-z_$][A-Za-z0-9_$]*$/.test(value) &&
    !/^[A-Z][A-Z0-9_]*$/.test(value),
};
