import type { Detector } from './detector.js';

/** Anthropic API and admin keys. */
export const anthropicKey: Detector = {
  id: 'anthropic-key',
  description: 'Anthropic API key (sk-ant-api03-, sk-ant-admin01-)',
  keywords: ['sk-ant-'],
  pattern: /(?<![A-Za-z0-9_-])sk-ant-(?:api|admin|sid|oat|ort)\d\d-[A-Za-z0-9_-]{32,200}(?![A-Za-z0-9_-])/g,
  maxLength: 220,
  span: /[A-Za-z0-9_-]/,
  minEntropy: 3.5,
};
