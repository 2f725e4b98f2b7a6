import type { Detector } from './detector.js';

/** GitLab personal, deploy, runner and pipeline-trigger tokens. */
export const gitlabToken: Detector = {
  id: 'gitlab-token',
  description: 'GitLab token (glpat-, gldt-, glrt-, glptt-)',
  keywords: ['glpat-', 'gldt-', 'glrt-', 'glptt-'],
  pattern: /(?<![A-Za-z0-9_-])(?:glpat|gldt|glrt|glptt)-[A-Za-z0-9_.-]{20,64}(?![A-Za-z0-9_.-])/g,
  maxLength: 70,
  span: /[A-Za-z0-9_.-]/,
  minEntropy: 3,
};
