/** What the global setup found, handed to every test file through vitest's `provide`/`inject`. */
export interface TestPostgresInfo {
  /** A superuser connection URL, or null when no PostgreSQL could be had. */
  readonly url: string | null;
  /** Where it came from. */
  readonly source: 'env' | 'local' | 'embedded' | null;
  /** Why there is none (only when `url` is null). */
  readonly skipReason?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    custosPostgres: TestPostgresInfo;
  }
}
