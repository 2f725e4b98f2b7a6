import type { Detector } from './detector.js';

/** AWS access key ids: a 4-letter type prefix and 16 base32 characters. */
export const awsAccessKeyId: Detector = {
  id: 'aws-access-key-id',
  description: 'AWS access key id (AKIA/ASIA/ABIA/ACCA)',
  keywords: ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'],
  pattern: /(?<![A-Za-z0-9+/])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9+/])/g,
  maxLength: 20,
  span: /[A-Z0-9]/,
};
