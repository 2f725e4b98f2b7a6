/**
 * The errors the SDK throws: one base class with a stable `code`, one
 * subclass per failure (as jose and custos's own server do).
 *
 * No message ever carries a token or a secret value. Messages from the
 * server are fixed per code or name a field, never its value (see
 * docs/errors.md); the transport additionally scrubs the tokens it knows
 * from them, so a server bug cannot make the SDK print a credential.
 */
export class CustosSdkError extends Error {
  /** A stable `CUSTOS_ERR_…` code (docs/errors.md). */
  readonly code: string;
  /** The HTTP status the error stands for (the server's, or the one a resource server answers). */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** The server refused or failed a request: its own code and HTTP status. */
export class CustosApiError extends CustosSdkError {}

/** No server answered at the address (connection refused, DNS, TLS). The request may not have arrived. */
export class CustosUnreachableError extends CustosSdkError {
  constructor(address: string, options?: { cause?: unknown }) {
    super('CUSTOS_ERR_UNREACHABLE', 0, `cannot reach custos at ${address}`, options);
  }
}

/** The server did not answer within the request timeout. The request may have been executed. */
export class CustosTimeoutError extends CustosSdkError {
  constructor(timeoutMs: number) {
    super('CUSTOS_ERR_TIMEOUT', 0, `custos did not answer within ${timeoutMs} ms`);
  }
}

/** The server answered something this client does not understand (not JSON, a promised field missing). */
export class CustosProtocolError extends CustosSdkError {
  constructor(detail: string) {
    super('CUSTOS_ERR_PROTOCOL', 502, `unexpected answer from custos: ${detail}`);
  }
}

/** A usage mistake in the calling code (an option missing or malformed); nothing was sent. */
export class CustosUsageError extends CustosSdkError {
  constructor(detail: string) {
    super('CUSTOS_ERR_VALIDATION', 400, detail);
  }
}

/**
 * A task token failed offline verification. The message is fixed, as the
 * server's is: `reason` (the same words as the server's audit reasons:
 * `expired`, `bad_signature`, …) is for the tool's own logs, never for the
 * caller it refuses.
 */
export class TaskTokenInvalidError extends CustosSdkError {
  readonly reason: string;

  constructor(reason: string) {
    super('CUSTOS_ERR_UNAUTHENTICATED', 401, 'Authentication is required or the token is not valid.');
    this.reason = reason;
  }
}

/** A valid task token whose scope does not cover what the tool requires. */
export class InsufficientScopeError extends CustosSdkError {
  /** The scope the tool required (not the token's). */
  readonly requiredScope: string;

  constructor(requiredScope: string) {
    super('CUSTOS_ERR_PERMISSION_DENIED', 403, 'Permission denied.');
    this.requiredScope = requiredScope;
  }
}
