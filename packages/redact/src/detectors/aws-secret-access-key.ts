import type { Detector } from './detector.js';

/**
 * AWS secret access keys are 40 base64 characters with no marker of their own,
 * so they are only recognised next to the name they are assigned to; a bare
 * 40-character string is as likely to be a git SHA or a digest.
 */
export const awsSecretAccessKey: Detector = {
  id: 'aws-secret-access-key',
  description: 'AWS secret access key assigned to aws_secret_access_key / SecretAccessKey',
  keywords: ['secret_access_key', 'secretaccesskey', 'aws_secret_key'],
  caseInsensitiveKeywords: true,
  pattern:
    /(?:secret_access_key|secretaccesskey|aws_secret_key)["']?\s{0,8}[:=]\s{0,8}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi,
  maxLength: 80,
  span: /[A-Za-z0-9_/+="' \t:]/,
  partial:
    /^(?:secret_access_key|secretaccesskey|aws_secret_key)["']?\s{0,8}(?:[:=]\s{0,8}["']?[A-Za-z0-9/+]{0,40})?$/i,
  minEntropy: 3.5,
};
