import type { Detector } from './detector.js';

/**
 * custos's own credentials: operator tokens (`cus_`) and single-use
 * bootstrap tokens (`cbt_`), each the prefix and 43 base64url characters
 * (32 random bytes). The prefix exists so that leaked custos tokens are
 * found like any other vendor's; a `generic` honeytoken has this shape too.
 */
export const custosToken: Detector = {
  id: 'custos-token',
  description: 'custos operator token (cus_) or bootstrap token (cbt_)',
  keywords: ['cus_', 'cbt_'],
  pattern: /(?<![A-Za-z0-9_-])(?:cus|cbt)_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g,
  maxLength: 47,
  span: /[A-Za-z0-9_-]/,
  minEntropy: 3.5,
};
