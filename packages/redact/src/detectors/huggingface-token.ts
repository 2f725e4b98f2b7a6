import type { Detector } from './detector.js';

/** Hugging Face user access tokens: `hf_` + 34 letters. */
export const huggingfaceToken: Detector = {
  id: 'huggingface-token',
  description: 'Hugging Face access token (hf_)',
  keywords: ['hf_'],
  pattern: /(?<![A-Za-z0-9_])hf_[A-Za-z]{34}(?![A-Za-z0-9_])/g,
  maxLength: 37,
  span: /[A-Za-z_]/,
  minEntropy: 3.5,
};
