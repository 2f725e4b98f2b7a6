import type { Detector } from './detector.js';
import { base62, crc32 } from './detector-checks.js';

/**
 * GitHub classic-format tokens (personal, OAuth, user-to-server,
 * server-to-server, refresh): `gh?_` + 30 random base62 characters + a 6
 * character base62 CRC-32 of those 30. The checksum rejects look-alikes.
 */
export const githubToken: Detector = {
  id: 'github-token',
  description: 'GitHub token (ghp_, gho_, ghu_, ghs_, ghr_) with valid checksum',
  keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
  pattern: /(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9_])/g,
  maxLength: 40,
  span: /[A-Za-z0-9_]/,
  validate: (token) => base62(crc32(token.slice(4, 34)), 6) === token.slice(34),
};
