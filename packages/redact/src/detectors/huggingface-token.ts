import type { Detector } from './detector.js';

/**
 * Hugging Face access tokens: user tokens `hf_` and (deprecated, still in old
 * notebooks and CI files) organisation API tokens `api_org_`, each followed by
 * 34 base62 characters. Older tokens were letters only, newer ones contain
 * digits too, so both are accepted.
 *
 * False positives: `hf_` and `api_org_` also start identifiers
 * (`hf_hub_download`, `api_org_controller`). The boundaries rule out longer
 * ones, and the body must mix upper- and lower-case letters, which a random
 * token of this length does with near certainty (a miss chance of about 1e-8
 * for base62, 1e-10 for letters only) while all-lower-case names, hex
 * digests and numbers never do.
 */
export const huggingfaceToken: Detector = {
  id: 'huggingface-token',
  description: 'Hugging Face access token (hf_, organisation api_org_)',
  keywords: ['hf_', 'api_org_'],
  pattern: /(?<![A-Za-z0-9_])(?:hf_|api_org_)[A-Za-z0-9]{34}(?![A-Za-z0-9_])/g,
  maxLength: 42,
  span: /[A-Za-z0-9_]/,
  minEntropy: 3.5,
  validate: (token) => {
    const body = token.slice(-34);
    return /[a-z]/.test(body) && /[A-Z]/.test(body);
  },
};
