import type { Detector } from './detector.js';

/** Stripe secret and restricted keys, live and test (publishable keys are public). */
export const stripeKey: Detector = {
  id: 'stripe-key',
  description: 'Stripe secret or restricted key (sk_/rk_ live or test)',
  keywords: ['sk_live_', 'sk_test_', 'rk_live_', 'rk_test_'],
  pattern: /(?<![A-Za-z0-9_])[sr]k_(?:live|test)_[0-9A-Za-z]{24,247}(?![0-9A-Za-z])/g,
  maxLength: 255,
  span: /[0-9A-Za-z_]/,
  minEntropy: 3,
};
