/** Limits of the credential proxy listener (`proxy` in the config file). */
export interface ProxyOptions {
  /** Largest request body forwarded, in bytes (default 10 MiB): counted as it streams, so a chunked body is cut too. */
  bodyLimit: number;
  /** How long the upstream may take to send its response head (default 60 s: a model may think before answering). */
  headersTimeoutMs: number;
  /** How long either side may be silent once the response streams (default 60 s). */
  idleTimeoutMs: number;
  /** How often a call in flight re-checks that its task tree is live and the node unsealed (default 1 s). */
  livenessIntervalMs: number;
}

export const DEFAULT_PROXY_OPTIONS: ProxyOptions = {
  bodyLimit: 10 * 1024 * 1024,
  headersTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  livenessIntervalMs: 1_000,
};
