import type { Detector } from './detector.js';

/** GitHub fine-grained personal access tokens. */
export const githubFineGrainedToken: Detector = {
  id: 'github-fine-grained-token',
  description: 'GitHub fine-grained personal access token (github_pat_)',
  keywords: ['github_pat_'],
  pattern: /(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9_])/g,
  maxLength: 93,
  span: /[A-Za-z0-9_]/,
};
