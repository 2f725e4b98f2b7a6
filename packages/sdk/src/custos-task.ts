import { inspect } from 'node:util';
import { CustosApiError, CustosUsageError } from './custos-errors.js';
import { DpopKey } from './dpop-key.js';
import { type CredsOptions, DynamicCredentials } from './dynamic-credentials.js';
import type { HttpTransport, TaskAuth } from './http-transport.js';
import { type RotationEvent, RotationSubscription, type RotationSubscriptionOptions } from './rotation-events.js';
import { pick, routePath } from './sdk-routes.js';
import { Upstream } from './upstream-client.js';

/** What a new task may ask for: all optional, all within what its role or parent allows. */
export interface TaskStartOptions {
  /** Lifetime (`10m`), within the role's max TTL (and the parent's expiry for a child). */
  readonly ttl?: string;
  /** A narrower scope: `ACTION:PATTERN` entries, e.g. `read:kv/team/* issue:pg-main/reader`. */
  readonly scope?: string;
  /** The agent's own labels: `agent.*` keys only at a login. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Bind the task to a fresh DPoP key (RFC 9449) held by this process: its
   * token is then refused without a proof of that key. Required by roles with
   * `require_dpop`. A child of a bound task is bound (to a key of its own)
   * unless `dpop: false`.
   */
  readonly dpop?: boolean;
}

/** A version of a secret, as read. */
export interface SecretValue {
  readonly data: Readonly<Record<string, string>>;
  readonly version: number;
  readonly createdTime: string;
}

/** One version in a secret's history (metadata only, never a value). */
export interface SecretVersionInfo {
  readonly version: number;
  readonly createdTime: string;
  readonly deletionTime: string | null;
  readonly destroyed: boolean;
}

/** A secret path's version history. */
export interface SecretVersions {
  readonly path: string;
  readonly currentVersion: number;
  readonly versions: readonly SecretVersionInfo[];
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/**
 * A live task: its token and what it can do with it. Made by a login,
 * {@link Custos.startTask} or {@link Task.delegate}; best used through
 * `withTask` / {@link Task.withChild}, which always end it.
 *
 * The token is held in a private field: `toJSON` and `util.inspect` leave
 * it out, so logging a Task does not leak it. {@link token} hands it over on
 * purpose (to a sub-process, or to a tool that verifies it).
 */
/** What {@link Task.requestAccess} asks for. */
export interface RequestAccessOptions {
  /** `ACTION:PATTERN` entries, e.g. `read:kv/finance/ledger`. */
  readonly scope: string;
  /** Why: shown to the approvers. */
  readonly reason: string;
  /** `10m`, or seconds; default 10 minutes, never beyond the task. */
  readonly ttl?: string | number;
  /** Ask that the task's delegated children get it too. */
  readonly children?: boolean;
  /** Wait for the decision: milliseconds, or `true` for 15 minutes. */
  readonly wait?: number | boolean;
}

/** An access request as custos shows it (docs/jit.md). */
export interface AccessRequest {
  readonly id: string;
  readonly status: 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';
  readonly task_id: string;
  readonly scope: string;
  readonly reason: string;
  readonly ttl_seconds: number;
  readonly children: boolean;
  readonly approvals_required: number;
  readonly approvals: readonly { by: string; at: string }[];
  readonly created_at: string;
  readonly decided_at?: string;
  readonly decided_by?: string;
  /** Once approved: when the elevation ends. */
  readonly expires_at?: string;
  readonly deny_reason?: string;
}

export class Task {
  readonly id: string;
  readonly accessor: string;
  /** The scope the task holds (what custos granted, which may be narrower than asked). */
  readonly scope: string;
  readonly expireTime: Date;
  readonly #token: string;
  readonly #transport: HttpTransport;
  readonly #dpop: { key: DpopKey; issuer: string } | undefined;
  readonly #credentials = new Set<DynamicCredentials>();
  readonly #subscriptions = new Set<RotationSubscription>();
  #over = false;

  /** @internal */
  constructor(
    issued: { token: string; taskId: string; accessor: string; scope: string; expireTime: Date },
    transport: HttpTransport,
    dpop?: { key: DpopKey; issuer: string },
  ) {
    this.#token = issued.token;
    this.#dpop = dpop;
    this.id = issued.taskId;
    this.accessor = issued.accessor;
    this.scope = issued.scope;
    this.expireTime = issued.expireTime;
    this.#transport = transport;
  }

  /** The task token, to hand to a sub-agent's process or a tool. Never logged by the SDK. */
  get token(): string {
    return this.#token;
  }

  /** The RFC 7638 thumbprint of the task's DPoP key, when its token is bound to one. */
  get dpopJkt(): string | undefined {
    return this.#dpop?.key.jkt;
  }

  /** True once {@link end} or {@link revoke} succeeded through this object. */
  get over(): boolean {
    return this.#over;
  }

  /**
   * Reads a secret: the version this task tree is pinned to (the first one
   * its root task read, so a rotation mid-pipeline is invisible), or
   * `version`.
   */
  async readSecret(path: string, options: { version?: number } = {}): Promise<SecretValue> {
    if (options.version !== undefined && !(Number.isSafeInteger(options.version) && options.version > 0)) {
      throw new CustosUsageError('version: a positive integer');
    }
    const query = options.version !== undefined ? `?version=${options.version}` : '';
    const body = pick('readSecret', await this.#get(`${routePath('readSecret', { path })}${query}`));
    const metadata = (body.metadata ?? {}) as Record<string, unknown>;
    return {
      data: body.data as Record<string, string>,
      version: Number(metadata.version),
      createdTime: String(metadata.created_time),
    };
  }

  /** A secret's version history, oldest first (needs `read` on the path). */
  async secretVersions(path: string): Promise<SecretVersions> {
    const body = pick('secretMetadata', await this.#get(routePath('secretMetadata', { path })));
    const versions = Object.values(body.versions as Record<string, Record<string, unknown>>)
      .map((v) => ({
        version: Number(v.version),
        createdTime: String(v.created_time),
        deletionTime: typeof v.deletion_time === 'string' ? v.deletion_time : null,
        destroyed: v.destroyed === true,
      }))
      .sort((a, b) => a.version - b.version);
    return { path: String(body.path), currentVersion: Number(body.current_version), versions };
  }

  /**
   * A narrower child task for a sub-agent, by RFC 8693 token exchange
   * (`POST /v1/oauth/token`, form-encoded, `subject_token_type` the JWT
   * type as custos requires). The child's scope must be within this task's
   * and it cannot outlive it; custos refuses rather than narrows. Not
   * retried after a 503: it would mint a second child.
   */
  async delegate(options: TaskStartOptions = {}): Promise<Task> {
    if (options.labels !== undefined) {
      throw new CustosUsageError('labels: the token exchange takes none; use the JSON form of delegation');
    }
    this.#assertLive();
    const childKey = (options.dpop ?? this.#dpop !== undefined) ? await DpopKey.generate() : undefined;
    const issuer = this.#dpop?.issuer ?? (childKey ? await this.#issuer() : undefined);
    const form: Record<string, string> = {
      grant_type: TOKEN_EXCHANGE,
      subject_token: this.#token,
      subject_token_type: JWT_TOKEN_TYPE,
      requested_token_type: JWT_TOKEN_TYPE,
      ...(options.scope !== undefined ? { scope: options.scope } : {}),
      ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
      ...(childKey ? { dpop_jkt: childKey.jkt } : {}),
    };
    const body = pick(
      'tokenExchange',
      // The subject token is the credential: no Authorization header.
      await this.#transport.call({
        method: 'POST',
        path: routePath('tokenExchange'),
        form,
        idempotent: false,
        secrets: [this.#token],
        // A bound subject token needs its proof here too (`ath` of the subject token).
        dpop: this.#auth().dpop,
      }),
    );
    return new Task(
      {
        token: String(body.access_token),
        taskId: String(body.task_id),
        accessor: String(body.accessor),
        scope: String(body.scope),
        expireTime: new Date(Date.now() + Number(body.expires_in) * 1000),
      },
      this.#transport,
      childKey && issuer ? { key: childKey, issuer } : undefined,
    );
  }

  /**
   * An upstream, called through custos's credential proxy with this task's
   * token (`fetch(path, init)`, or `baseUrl` for an SDK that takes one). The
   * proxy is `proxyAddress` of the client, else `CUSTOS_PROXY_ADDR`. The
   * proxy takes unbound task tokens only: a DPoP-bound task is refused here,
   * before its token could be sent as a bearer token.
   */
  upstream(name: string): Upstream {
    this.#assertLive();
    if (this.#dpop) throw new CustosUsageError('upstream: the credential proxy takes unbound task tokens only');
    const proxy = this.#transport.proxyAddress;
    if (!proxy) throw new CustosUsageError('proxyAddress: set it on the client, or CUSTOS_PROXY_ADDR');
    return new Upstream(name, proxy, this.#token, this.#transport.timeoutMs);
  }

  /**
   * A token for a registered resource (RFC 8707): a child task whose token's
   * `aud` is `resource` alone, for an MCP server or API that verifies it
   * with `verifyTaskToken(token, { issuer, audience: resource })`. custos
   * itself refuses that token (a resource server cannot replay it here), so
   * it is handed over, not wrapped in a {@link Task}: this task ends it,
   * with its subtree. Needs `use` on `resource/NAME`; its scope is the
   * resource's registered scopes unless `scope` names fewer. Not retried.
   */
  async resourceToken(resource: string, options: { scope?: string; ttl?: string } = {}): Promise<ResourceToken> {
    this.#assertLive();
    if (typeof resource !== 'string' || resource.length === 0) throw new CustosUsageError('resource: a URL');
    const body = pick(
      'tokenExchange',
      await this.#transport.call({
        method: 'POST',
        path: routePath('tokenExchange'),
        form: {
          grant_type: TOKEN_EXCHANGE,
          subject_token: this.#token,
          subject_token_type: JWT_TOKEN_TYPE,
          requested_token_type: JWT_TOKEN_TYPE,
          resource,
          ...(options.scope !== undefined ? { scope: options.scope } : {}),
          ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
        },
        idempotent: false,
        secrets: [this.#token],
        dpop: this.#auth().dpop,
      }),
    );
    return new ResourceToken({
      token: String(body.access_token),
      taskId: String(body.task_id),
      accessor: String(body.accessor),
      scope: String(body.scope),
      audience: typeof body.aud === 'string' ? body.aud : resource,
      expireTime: new Date(Date.now() + Number(body.expires_in) * 1000),
    });
  }

  /** Delegates a child, runs `work` with it, and always ends it (revokes it if `work` throws). */
  async withChild<T>(options: TaskStartOptions, work: (child: Task) => Promise<T>): Promise<T> {
    return runTask(await this.delegate(options), work);
  }

  /**
   * Dynamic database credentials (`custos creds ENGINE/ROLE`), leased to this
   * task and renewed until it ends; custos drops the user when the task ends
   * or is revoked. Not retried after a 503: it would create a second user.
   */
  async creds(engineRole: string, options: CredsOptions = {}): Promise<DynamicCredentials> {
    const [engine, role, extra] = engineRole.split('/');
    if (!engine || !role || extra !== undefined) throw new CustosUsageError('creds: ENGINE/ROLE');
    this.#assertLive();
    const issued = pick(
      'issueCreds',
      await this.#transport.call({
        method: 'POST',
        path: routePath('issueCreds', { engine, role }),
        ...this.#auth(),
        json: options.ttl !== undefined ? { ttl: options.ttl } : {},
        idempotent: false,
      }),
    );
    const credentials = new DynamicCredentials(issued, this.#transport, this.#auth(), options);
    this.#credentials.add(credentials);
    return credentials;
  }

  /**
   * Calls `onEvent` when a secret this task may read is rotated (`GET
   * /v1/events`, server-sent events), until the subscription is closed or
   * the task ends. The task's own reads stay pinned to the version its tree
   * first read; the event says a newer one exists (for a long-running agent
   * that starts a fresh task, or reads `{ version }` explicitly).
   */
  onRotation(onEvent: (event: RotationEvent) => void, options: RotationSubscriptionOptions = {}): RotationSubscription {
    this.#assertLive();
    const subscription = new RotationSubscription(this.#transport, this.#auth(), onEvent, options);
    this.#subscriptions.add(subscription);
    void subscription.done.then(() => this.#subscriptions.delete(subscription));
    return subscription;
  }

  /**
   * Asks a human for a scope beyond this task's own (just-in-time
   * elevation, docs/jit.md): `scope` within the role's request ceiling,
   * `reason` for the approvers, `ttl` (default 10m, never beyond the task),
   * `children` to ask that delegated children get it too. With `wait`
   * (milliseconds, or `true` for 15 minutes), resolves once a human decided
   * or the wait ran out (`status: 'pending'`). Once approved, *this* task's
   * token carries the elevation: nothing to re-issue.
   *
   * @example
   * const request = await task.requestAccess({ scope: 'read:kv/finance/ledger', reason: 'reconcile Q3', wait: 120_000 });
   * if (request.status === 'approved') await task.readSecret('kv/finance/ledger');
   */
  async requestAccess(options: RequestAccessOptions): Promise<AccessRequest> {
    this.#assertLive();
    const filed = pick(
      'requestAccess',
      await this.#transport.call({
        method: 'POST',
        path: routePath('requestAccess'),
        ...this.#auth(),
        json: {
          scope: options.scope,
          reason: options.reason,
          ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
          ...(options.children ? { children: true } : {}),
        },
        // A duplicate is merged by custos, so sending it twice files one request.
        idempotent: true,
      }),
    );
    let request = filed.request as AccessRequest;
    const waitMs = options.wait === true ? 15 * 60_000 : options.wait || 0;
    const deadline = Date.now() + waitMs;
    // The server holds each poll; each hold stays well inside this client's request timeout.
    const holdMax = Math.max(1, Math.min(30, Math.floor(this.#transport.timeoutMs / 1000) - 5));
    while (request.status === 'pending' && Date.now() < deadline) {
      const hold = Math.max(1, Math.min(holdMax, Math.ceil((deadline - Date.now()) / 1000)));
      request = (await this.accessRequest(request.id, { waitSeconds: hold })) as AccessRequest;
    }
    return request;
  }

  /** One of this task's access requests, as custos shows it now (or after holding up to `waitSeconds` for a decision). */
  async accessRequest(id: string, options: { waitSeconds?: number } = {}): Promise<AccessRequest> {
    const query = options.waitSeconds ? `?wait=${Math.floor(options.waitSeconds)}s` : '';
    const body = pick('showRequest', await this.#get(`${routePath('showRequest', { id })}${query}`));
    return body.request as AccessRequest;
  }

  /** The task as custos sees it now (`state`: active, ended, revoked, expired). */
  async show(): Promise<{ id: string; state: string; scope: string; expireTime: string }> {
    const body = pick('showTask', await this.#get(routePath('showTask', { id: this.id })));
    return {
      id: String(body.id),
      state: String(body.state),
      scope: String(body.scope),
      expireTime: String(body.expire_time),
    };
  }

  /** Ends the task (its work is done): its subtree and every lease end with it. */
  end(): Promise<void> {
    return this.#finish('end');
  }

  /** Revokes the task and its subtree: every token of the tree is refused from the next request. */
  revoke(): Promise<void> {
    return this.#finish('revoke');
  }

  /** Without the token, for logs. */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      accessor: this.accessor,
      scope: this.scope,
      expireTime: this.expireTime,
      token: '[redacted]',
    };
  }

  [inspect.custom](): string {
    return `Task ${JSON.stringify(this.toJSON())}`;
  }

  async #finish(how: 'end' | 'revoke'): Promise<void> {
    for (const credentials of this.#credentials) credentials.stop();
    for (const subscription of this.#subscriptions) subscription.close();
    if (this.#over) return;
    // Retried after a 503 (ending twice is ending once). A 401 means this
    // token is refused, which for a task token custos minted means the task
    // is no longer live: already ended or revoked (an ancestor revoked the
    // tree, or a first attempt whose answer was lost did end it), or
    // expired. The task is over either way, which is what was asked.
    try {
      await this.#transport.call({
        method: 'POST',
        path: routePath(how === 'end' ? 'endTask' : 'revokeTask', { id: this.id }),
        ...this.#auth(),
        idempotent: true,
      });
    } catch (error) {
      if (!(error instanceof CustosApiError && error.code === 'CUSTOS_ERR_UNAUTHENTICATED')) throw error;
    }
    this.#over = true;
  }

  #get(path: string): Promise<unknown> {
    this.#assertLive();
    return this.#transport.call({ method: 'GET', path, ...this.#auth(), idempotent: true });
  }

  /** The token, with a DPoP binding when the token is bound. */
  #auth(): TaskAuth {
    const dpop = this.#dpop && { ...this.#dpop, accessToken: this.#token };
    return { token: this.#token, ...(dpop ? { dpop } : {}) };
  }

  /** custos's issuer, for the first bound child of an unbound task. */
  async #issuer(): Promise<string> {
    const body = pick(
      'metadata',
      await this.#transport.call({ method: 'GET', path: routePath('metadata'), idempotent: true }),
    );
    return String(body.issuer);
  }

  #assertLive(): void {
    if (this.#over) throw new CustosUsageError('this task is over');
  }
}

/** A token for a registered resource ({@link Task.resourceToken}); its task ends with its parent's. */
export class ResourceToken {
  readonly taskId: string;
  readonly accessor: string;
  readonly scope: string;
  /** The token's `aud`: the resource's URL as custos registered it. */
  readonly audience: string;
  readonly expireTime: Date;
  readonly #token: string;

  /** @internal */
  constructor(issued: {
    token: string;
    taskId: string;
    accessor: string;
    scope: string;
    audience: string;
    expireTime: Date;
  }) {
    this.#token = issued.token;
    this.taskId = issued.taskId;
    this.accessor = issued.accessor;
    this.scope = issued.scope;
    this.audience = issued.audience;
    this.expireTime = issued.expireTime;
  }

  /** The token, to send to the resource (`Authorization: Bearer`). Never logged by the SDK. */
  get token(): string {
    return this.#token;
  }

  toJSON(): Record<string, unknown> {
    return {
      taskId: this.taskId,
      accessor: this.accessor,
      scope: this.scope,
      audience: this.audience,
      expireTime: this.expireTime,
      token: '[redacted]',
    };
  }

  [inspect.custom](): string {
    return `ResourceToken ${JSON.stringify(this.toJSON())}`;
  }
}

/** Runs `work` with `task`, then ends it; if `work` throws, revokes it and rethrows. */
export async function runTask<T>(task: Task, work: (task: Task) => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work(task);
  } catch (error) {
    try {
      await task.revoke();
    } catch (revokeError) {
      // Both matter: the work failed, and the task may still be live.
      throw new AggregateError([error, revokeError], 'the task failed and could not be revoked');
    }
    throw error;
  }
  await task.end();
  return result;
}
