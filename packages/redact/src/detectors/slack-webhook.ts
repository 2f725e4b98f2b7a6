import type { Detector } from './detector.js';

/** Slack incoming-webhook URLs: whoever has the URL can post to the channel. */
export const slackWebhook: Detector = {
  id: 'slack-webhook',
  description: 'Slack incoming webhook URL',
  keywords: ['hooks.slack.com/'],
  pattern:
    /hooks\.slack\.com\/(?:services|workflows|triggers)\/(?<secret>[A-Za-z0-9_]{8,14}\/[A-Za-z0-9_]{8,14}\/[A-Za-z0-9_]{20,48})(?![A-Za-z0-9_])/g,
  maxLength: 120,
  span: /[A-Za-z0-9_./]/,
};
