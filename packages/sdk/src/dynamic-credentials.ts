import { inspect } from 'node:util';
import { CustosApiError, type CustosSdkError } from './custos-errors.js';
import type { HttpTransport, TaskAuth } from './http-transport.js';
import { pick, routePath } from './sdk-routes.js';

/** Options of {@link Task.creds}. */
export interface CredsOptions {
  /** The lease's TTL (`5m`), within the engine role's max and never past the task. Default the role's. */
  readonly ttl?: string;
  /** Renew the lease before it expires, until the task ends. Default true. */
  readonly renew?: boolean;
  /** Told about a renewal that failed (the credentials may then expire before the task ends). */
  readonly onRenewalError?: (error: CustosSdkError) => void;
}

/** The shortest wait between renewals, so a lease of a few seconds cannot make the SDK spin. */
const MIN_RENEW_DELAY_MS = 1_000;

/**
 * A database user leased to a task (`POST /v1/creds/ENGINE/ROLE`).
 *
 * Renewal: at two thirds of the remaining lifetime the lease is renewed by
 * its original TTL (`POST /v1/leases/ID/renew`); custos never extends it past
 * the role's max TTL or the task's expiry, and renewal stops once a renewal
 * gains nothing. A failed renewal is reported through `onRenewalError`; a
 * 5xx or network failure is tried again at half the remaining time, a
 * refusal (the lease or task is gone) stops renewal. Timers are `unref`ed:
 * they never keep a process alive.
 *
 * Revocation: when the task ends or is revoked, custos drops the user and
 * ends its sessions (the lease belongs to the task); {@link stop} only stops
 * renewing, {@link revoke} drops the user now.
 */
export class DynamicCredentials {
  readonly leaseId: string;
  readonly username: string;
  #password: string;
  #expireTime: Date;
  readonly #ttlSeconds: number;
  readonly #transport: HttpTransport;
  readonly #auth: TaskAuth;
  readonly #onRenewalError: ((error: CustosSdkError) => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  readonly #sessionToken: string | undefined;

  /** @internal Built by {@link Task.creds}. */
  constructor(issued: Record<string, unknown>, transport: HttpTransport, auth: TaskAuth, options: CredsOptions) {
    this.leaseId = String(issued.lease_id);
    this.username = String(issued.username);
    this.#password = String(issued.password);
    this.#expireTime = new Date(String(issued.expire_time));
    this.#ttlSeconds = Math.max(1, Number(issued.ttl_seconds));
    this.#transport = transport;
    this.#auth = auth;
    this.#onRenewalError = options.onRenewalError;
    this.#sessionToken = typeof issued.session_token === 'string' ? issued.session_token : undefined;
    // An AWS role session (aws-sts engine) cannot be extended: never scheduled.
    if (options.renew !== false && this.#sessionToken === undefined) this.#schedule(this.#untilRenewal());
  }

  /**
   * The AWS session token, for an `aws-sts` engine's credentials (then
   * `username` is the access key id and `password` the secret access key);
   * undefined for a database user. Never logged by the SDK.
   */
  get sessionToken(): string | undefined {
    return this.#sessionToken;
  }

  /** The database password. Shown once by custos, held only here; never logged by the SDK. */
  get password(): string {
    return this.#password;
  }

  /** When the lease expires, as of the last issue or renewal. */
  get expireTime(): Date {
    return this.#expireTime;
  }

  /** Whether renewal is still scheduled. */
  get renewing(): boolean {
    return this.#timer !== undefined;
  }

  /** Renews the lease now (by its original TTL) and returns the new expiry. */
  async renew(): Promise<Date> {
    const lease = pick(
      'renewLease',
      await this.#transport.call({
        method: 'POST',
        path: routePath('renewLease', { id: this.leaseId }),
        ...this.#auth,
        json: { increment: `${this.#ttlSeconds}s` },
        idempotent: true,
      }),
    );
    this.#expireTime = new Date(String(lease.expire_time));
    return this.#expireTime;
  }

  /** Stops renewing (the task is ending). The user lives until the lease expires or the task ends. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Drops the database user now and stops renewing. */
  async revoke(): Promise<void> {
    this.stop();
    await this.#transport.call({
      method: 'POST',
      path: routePath('revokeLease', { id: this.leaseId }),
      ...this.#auth,
      idempotent: true,
    });
  }

  /** Without the password, for logs. */
  toJSON(): Record<string, unknown> {
    return {
      leaseId: this.leaseId,
      username: this.username,
      password: '[redacted]',
      ...(this.#sessionToken !== undefined ? { sessionToken: '[redacted]' } : {}),
      expireTime: this.#expireTime,
    };
  }

  [inspect.custom](): string {
    return `DynamicCredentials ${JSON.stringify(this.toJSON())}`;
  }

  #untilRenewal(): number {
    return Math.max(MIN_RENEW_DELAY_MS, ((this.#expireTime.getTime() - Date.now()) * 2) / 3);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#renewOnTimer(), delayMs);
    this.#timer.unref();
  }

  async #renewOnTimer(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped) return;
    const before = this.#expireTime.getTime();
    try {
      const after = (await this.renew()).getTime();
      // At its limit (role max TTL, task expiry): nothing more to gain.
      if (after > before) this.#schedule(this.#untilRenewal());
    } catch (error) {
      const sdkError = error as CustosSdkError;
      this.#onRenewalError?.(sdkError);
      const refused = error instanceof CustosApiError && error.status < 500;
      const remaining = before - Date.now();
      if (!refused && remaining > MIN_RENEW_DELAY_MS) this.#schedule(remaining / 2);
    }
  }
}
