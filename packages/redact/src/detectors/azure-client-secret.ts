import type { Detector } from './detector.js';

/** Microsoft Entra ID (Azure AD) application client secrets: `xxx8Q~…`. */
export const azureClientSecret: Detector = {
  id: 'azure-client-secret',
  description: 'Azure / Entra ID client secret (…Q~…)',
  // The digit before 'Q~' is part of the keyword: 3 characters filter far better than 2.
  keywords: [...'0123456789'].map((d) => `${d}Q~`),
  lookback: 3,
  pattern: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g,
  maxLength: 40,
  span: /[A-Za-z0-9_~.-]/,
  minEntropy: 3.5,
};
