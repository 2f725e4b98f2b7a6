import type { Detector } from './detector.js';

/**
 * OpenAI API keys: project, service-account and admin keys (`sk-proj-…`), and
 * legacy user keys, which carry the marker `T3BlbkFJ` (base64 of "OpenAI").
 */
export const openaiKey: Detector = {
  id: 'openai-key',
  description: 'OpenAI API key (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-…T3BlbkFJ…)',
  keywords: ['sk-'],
  pattern:
    /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?![A-Za-z0-9_-])/g,
  maxLength: 262,
  span: /[A-Za-z0-9_-]/,
  minEntropy: 3.5,
};
