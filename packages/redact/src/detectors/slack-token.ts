import type { Detector } from './detector.js';

/** Slack bot, user, app, config and refresh tokens. */
export const slackToken: Detector = {
  id: 'slack-token',
  description: 'Slack token (xoxb-, xoxp-, xoxa-, xoxe-, xoxs-, xoxr-, xoxo-)',
  keywords: ['xoxb-', 'xoxp-', 'xoxa-', 'xoxe-', 'xoxs-', 'xoxr-', 'xoxo-'],
  pattern: /(?<![A-Za-z0-9_-])xox[abeposr]-(?:\d+-)?[0-9A-Za-z-]{10,200}(?![0-9A-Za-z-])/g,
  maxLength: 210,
  span: /[0-9A-Za-z-]/,
  minEntropy: 3,
};
