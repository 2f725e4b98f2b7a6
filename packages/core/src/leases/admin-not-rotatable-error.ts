import { CustosError } from '../errors/index.js';

/**
 * A database rotator was pointed at the account an engine connects as. That
 * account changes only through `rotate-root`, whose new password goes behind
 * the barrier and is known to nobody; as a rotator's target its password
 * would become a secret value that whoever reads the path could read. Thrown
 * by core (checking the user of the engine's URL) and by the engines
 * themselves (checking `current_user`/`session_user`, `CURRENT_USER()`/`USER()`),
 * whatever core checked — one error, one message, wherever it is caught.
 */
export class AdminNotRotatableError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_USER_NOT_ROTATABLE', 'It is the engine’s admin account: only rotate-root changes its password.');
  }
}
