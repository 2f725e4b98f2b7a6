import { CustosError } from '../errors/index.js';

/** No registered resource of that name. */
export class ResourceNotFoundError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_RESOURCE_NOT_FOUND');
  }
}

/** A resource URL custos will not put in a token's `aud`: the detail names the rule broken. */
export class ResourceUrlError extends CustosError {
  /** The rule broken, alone (the token exchange repeats it in its own error). */
  readonly rule: string;

  constructor(rule: string) {
    super('CUSTOS_ERR_RESOURCE_URL_INVALID', rule);
    this.rule = rule;
  }
}

/** A resource's scope list is not a custos scope (`ACTION:PATTERN` entries). */
export class ResourceScopeError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_RESOURCE_SCOPE_INVALID', detail);
  }
}
