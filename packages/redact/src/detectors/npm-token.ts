import type { Detector } from './detector.js';

/** npm access tokens. */
export const npmToken: Detector = {
  id: 'npm-token',
  description: 'npm access token (npm_)',
  keywords: ['npm_'],
  pattern: /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])/g,
  maxLength: 40,
  span: /[A-Za-z0-9_]/,
  minEntropy: 3.5,
};
