import { ERROR_CATALOGUE, type ErrorCode } from './error-catalogue.js';

/**
 * The one base error of custos. `code` is stable and is what clients and
 * scripts match on; `status` is the HTTP status the server maps it to.
 *
 * `detail` is an optional, *safe* sentence for the client (never a secret,
 * SQL text or a stack). Auth and crypto failures must not set it.
 */
export class CustosError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ERROR_CATALOGUE[code].message} ${detail}` : ERROR_CATALOGUE[code].message, options);
    this.name = 'CustosError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.detail = detail;
  }

  /** The body the server sends: code and message, nothing else. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** True for any custos error, whichever realm created it. */
export function isCustosError(e: unknown): e is CustosError {
  return e instanceof CustosError;
}
