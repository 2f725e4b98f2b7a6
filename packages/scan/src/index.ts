export type { Baseline } from './baseline.js';
export { applyBaseline, createBaseline, findingFingerprint, parseBaseline } from './baseline.js';
export { parseKnownSecrets } from './known-secrets-file.js';
export { jsonReport } from './report/json-report.js';
export { maskValue } from './report/mask-value.js';
export type { ReportOptions } from './report/report-options.js';
export type { SarifReportOptions, SarifRuleInfo } from './report/sarif-report.js';
export { sarifReport } from './report/sarif-report.js';
export { textReport } from './report/text-report.js';
export type { ScanLimits } from './scan-limits.js';
export { DEFAULT_SCAN_LIMITS } from './scan-limits.js';
export type { ScanErrorCode, ScanErrorEntry, ScanFinding, ScanFindingKind, ScanResult } from './scan-types.js';
export { formatLocation } from './scan-types.js';
export type { ScanOptions, ScanProgress } from './scanner.js';
export { scanPaths } from './scanner.js';
export { type FindAllSource, SecretMatcher } from './secret-matcher.js';
export type { VaultClientOptions } from './vault/vault-client.js';
export {
  fetchVaultFingerprints,
  reportVaultMatches,
  VaultFetchError,
  type VaultMatch,
  vaultMatchOf,
} from './vault/vault-client.js';
export type { VaultFingerprint, VaultFingerprints } from './vault/vault-fingerprints.js';
export { matchVault } from './vault/vault-fingerprints.js';
