/** How a report renders values. */
export interface ReportOptions {
  /** Print found values in full (`--show-secrets`). Off by default: a report is often a CI log. */
  readonly showSecrets?: boolean;
}
