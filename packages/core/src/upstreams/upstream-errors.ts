import { CustosError } from '../errors/index.js';

// One subclass per way an upstream's configuration or a proxied call can be
// refused, each with its stable code. Details name the rule broken, never a
// secret value, a token or a query value.

/** No upstream of that name (answered only after `use` was authorised: no existence oracle). */
export class UpstreamNotFoundError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_UPSTREAM_NOT_FOUND');
  }
}

/** The base URL is not one custos attaches a credential to. */
export class UpstreamUrlError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_URL_INVALID', detail);
  }
}

/** An inject rule does not follow the grammar. */
export class UpstreamInjectError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_INJECT_INVALID', detail);
  }
}

/** An allow-path, allow-method or allow-host entry is malformed. */
export class UpstreamAllowError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_ALLOW_INVALID', detail);
  }
}

/** The secret reference is not `PATH#FIELD`. */
export class UpstreamSecretRefError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_SECRET_INVALID', detail);
  }
}

/** The secret could not be read at call time, or its value cannot be sent safely. */
export class UpstreamSecretUnavailableError extends CustosError {
  constructor(detail?: string) {
    super('CUSTOS_ERR_UPSTREAM_SECRET_UNAVAILABLE', detail);
  }
}

/** A proxied path that could escape the base URL's path or smuggle control characters. */
export class ProxyPathRefusedError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_PROXY_PATH_REFUSED', detail);
  }
}

/** The method is not on the upstream's allow-method list. */
export class ProxyMethodRefusedError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_PROXY_METHOD_REFUSED');
  }
}

/** The path is not on the upstream's allow-path list. */
export class ProxyPathNotAllowedError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_PROXY_PATH_NOT_ALLOWED');
  }
}

/** The upstream sent no response head within the headers timeout, or went idle mid-body. */
export class UpstreamTimeoutError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_TIMEOUT', detail);
  }
}

/** The upstream could not be reached, or reset the connection. */
export class UpstreamFailedError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_FAILED', detail);
  }
}

/** The upstream's answer cannot pass through the redactor (compressed or binary). */
export class UpstreamResponseRefusedError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_UPSTREAM_RESPONSE_REFUSED', detail);
  }
}
