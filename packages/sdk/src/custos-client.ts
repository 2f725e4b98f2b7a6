import { inspect } from 'node:util';
import { type CertLoginCredentials, certLogin } from './cert-login.js';
import { CustosUsageError } from './custos-errors.js';
import { runTask, Task, type TaskStartOptions } from './custos-task.js';
import { DpopKey } from './dpop-key.js';
import { HttpTransport, type TransportOptions } from './http-transport.js';
import { pick, routePath } from './sdk-routes.js';

/** The `task_id` claim of a task token, unverified (custos verifies it when the token is used). */
function taskIdClaim(token: string): string {
  const payload = token.split('.')[1];
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
  } catch {
    claims = undefined;
  }
  const id = (claims as { task_id?: unknown } | undefined)?.task_id;
  if (typeof id !== 'string' || !/^tsk_[A-Za-z0-9_-]{22}$/.test(id)) {
    throw new CustosUsageError('not a custos task token');
  }
  return id;
}

/** Options of {@link Custos}. */
export interface CustosOptions extends TransportOptions {
  /** An operator token, for {@link Custos.startTask} and {@link Custos.revokeTask}. Logins need none. */
  readonly token?: string;
}

/** How `withTask` gets its task: one of the logins, or an operator start. */
export type TaskSource =
  /** A single-use bootstrap token (`custos bootstrap create`). */
  | { readonly bootstrap: string }
  /** A workload identity JWT (Kubernetes, GitHub Actions, any OIDC issuer configured as a JWT method). */
  | { readonly jwt: string; readonly role: string; readonly method?: string }
  /** A client certificate from custos's CA, over the mTLS listener. */
  | { readonly cert: CertLoginCredentials }
  /** An operator starts a root task of `role` with the client's token. */
  | { readonly role: string }
  /** A task token this process was handed (its parent's delegation, `custos run`'s `CUSTOS_TOKEN`): see {@link Custos.adoptTask}. */
  | { readonly token: string };

export type WithTaskOptions = TaskSource & TaskStartOptions;

/**
 * A custos client for agents: fetch only, no dependencies.
 *
 * @example
 * ```ts
 * const custos = new Custos({ address: 'http://127.0.0.1:8420' });
 * const summary = await custos.withTask({ bootstrap: process.env.CUSTOS_BOOTSTRAP!, ttl: '10m' }, async (task) => {
 *   const { data } = await task.readSecret('kv/finance/enrichment-api');
 *   return task.withChild({ scope: 'read:kv/finance/enrichment-api', ttl: '2m' }, (child) => runAgent(child.token, data));
 * }); // the task (and its children, and their database users) ended here, even if the callback threw
 * ```
 */
export class Custos {
  readonly #transport: HttpTransport;
  readonly #token: string | undefined;
  #issuerOnce: Promise<string> | undefined;

  constructor(options: CustosOptions) {
    this.#transport = new HttpTransport(options);
    this.#token = options.token;
  }

  /** The server's address. */
  get address(): string {
    return this.#transport.address;
  }

  /** Exchanges a single-use bootstrap token for a task. Never retried: a second use is reported as a replay. */
  async loginWithBootstrap(bootstrapToken: string, options: TaskStartOptions = {}): Promise<Task> {
    const key = await dpopKey(options);
    return this.#issued(
      key,
      'bootstrapLogin',
      await this.#transport.call({
        method: 'POST',
        path: routePath('bootstrapLogin'),
        json: { token: bootstrapToken, ...startBody(options, key) },
        idempotent: false,
        secrets: [bootstrapToken],
      }),
    );
  }

  /** Exchanges a workload identity JWT for a task of `role` (through JWT method `method`, if several fit). */
  async loginWithJwt(
    credentials: { jwt: string; role: string; method?: string },
    options: TaskStartOptions = {},
  ): Promise<Task> {
    const key = await dpopKey(options);
    return this.#issued(
      key,
      'jwtLogin',
      await this.#transport.call({
        method: 'POST',
        path: routePath('jwtLogin'),
        json: {
          role: credentials.role,
          jwt: credentials.jwt,
          ...(credentials.method !== undefined ? { method: credentials.method } : {}),
          ...startBody(options, key),
        },
        idempotent: false,
        secrets: [credentials.jwt],
      }),
    );
  }

  /**
   * Logs in with a signed `sts:GetCallerIdentity` request (see
   * {@link signAwsLoginRequest}): the AWS credentials never leave the process.
   */
  async loginWithAws(
    credentials: { role: string; request: { headers: Record<string, string>; body: string }; method?: string },
    options: TaskStartOptions = {},
  ): Promise<Task> {
    const key = await dpopKey(options);
    return this.#issued(
      key,
      'awsLogin',
      await this.#transport.call({
        method: 'POST',
        path: routePath('awsLogin'),
        json: {
          role: credentials.role,
          request: credentials.request,
          ...(credentials.method !== undefined ? { method: credentials.method } : {}),
          ...startBody(options, key),
        },
        idempotent: false,
        secrets: [credentials.request.headers.authorization ?? ''],
      }),
    );
  }

  /** Logs in with a client certificate over the mTLS listener: no bearer secret is sent. */
  async loginWithCertificate(credentials: CertLoginCredentials, options: TaskStartOptions = {}): Promise<Task> {
    const key = await dpopKey(options);
    return this.#issued(
      key,
      'certLogin',
      await certLogin(credentials, this.#transport.address, startBody(options, key), this.#transport.timeoutMs),
    );
  }

  /** Starts a root task of `role` with the client's operator token (`custos task start`). */
  async startTask(role: string, options: TaskStartOptions = {}): Promise<Task> {
    const key = await dpopKey(options);
    return this.#issued(
      key,
      'startTask',
      await this.#transport.call({
        method: 'POST',
        path: routePath('startTask', { name: role }),
        token: this.#operatorToken(),
        json: startBody(options, key),
        idempotent: false,
      }),
    );
  }

  /**
   * The task whose token this process was handed — by the agent that
   * delegated it, or by `custos run` (`CUSTOS_TOKEN`) — as a {@link Task}.
   * The task is looked up with that token, so a token that is not live
   * (revoked, ended, expired, forged) fails here, not at first use. The id
   * is read from the token's claims only to name the lookup; custos checks
   * the signature. Bearer tokens only: a DPoP-bound token is worthless
   * without the key that stayed with whoever bound it.
   */
  async adoptTask(token: string): Promise<Task> {
    const taskId = taskIdClaim(token);
    const body = pick(
      'showTask',
      await this.#transport.call({
        method: 'GET',
        path: routePath('showTask', { id: taskId }),
        token,
        idempotent: true,
      }),
    );
    return new Task(
      {
        token,
        taskId,
        accessor: String(body.accessor),
        scope: String(body.scope),
        expireTime: new Date(String(body.expire_time)),
      },
      this.#transport,
    );
  }

  /** Revokes a task and its subtree by id, with the client's operator token. */
  async revokeTask(taskId: string): Promise<void> {
    await this.#transport.call({
      method: 'POST',
      path: routePath('revokeTask', { id: taskId }),
      token: this.#operatorToken(),
      idempotent: true,
    });
  }

  /**
   * Starts a task (by a login or an operator start), runs `work` with it, and
   * always ends it: ended when `work` returns, revoked when it throws (the
   * error is rethrown; if the revocation fails too, both are thrown in an
   * AggregateError, since the task may then still be live). Ending a task
   * ends its subtree and drops its database users.
   */
  async withTask<T>(options: WithTaskOptions, work: (task: Task) => Promise<T>): Promise<T> {
    return runTask(await this.#start(options), work);
  }

  /** Without the token, for logs. */
  toJSON(): Record<string, unknown> {
    return { address: this.address, token: this.#token === undefined ? undefined : '[redacted]' };
  }

  [inspect.custom](): string {
    return `Custos ${JSON.stringify(this.toJSON())}`;
  }

  #start(options: WithTaskOptions): Promise<Task> {
    const start: TaskStartOptions = {
      ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
      ...(options.scope !== undefined ? { scope: options.scope } : {}),
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
      ...(options.dpop !== undefined ? { dpop: options.dpop } : {}),
    };
    if ('bootstrap' in options) return this.loginWithBootstrap(options.bootstrap, start);
    if ('jwt' in options) {
      return this.loginWithJwt(
        { jwt: options.jwt, role: options.role, ...(options.method !== undefined ? { method: options.method } : {}) },
        start,
      );
    }
    if ('cert' in options) return this.loginWithCertificate(options.cert, start);
    if ('role' in options) return this.startTask(options.role, start);
    if ('token' in options) {
      // Its lifetime, scope and binding were fixed when it was minted.
      if (Object.keys(start).length > 0) {
        return Promise.reject(
          new CustosUsageError('withTask: a handed-down token takes no ttl, scope, labels or dpop'),
        );
      }
      return this.adoptTask(options.token);
    }
    return Promise.reject(new CustosUsageError('withTask: give bootstrap, jwt and role, cert, or role'));
  }

  #operatorToken(): string {
    if (this.#token === undefined) throw new CustosUsageError('this needs an operator token: new Custos({ token })');
    return this.#token;
  }

  async #issued(
    key: DpopKey | undefined,
    route: 'bootstrapLogin' | 'jwtLogin' | 'awsLogin' | 'certLogin' | 'startTask',
    response: unknown,
  ): Promise<Task> {
    const body = pick(route, response);
    // The proofs name URLs under custos's issuer, which may differ from the address dialled (a proxy, a port map).
    const binding = key ? { key, issuer: await this.#issuer() } : undefined;
    return new Task(
      {
        token: String(body.token),
        taskId: String(body.task_id),
        accessor: String(body.accessor),
        scope: String(body.scope),
        expireTime: new Date(String(body.expire_time)),
      },
      this.#transport,
      binding,
    );
  }

  /** custos's issuer, from its RFC 8414 metadata: read once per client, only for DPoP-bound tasks. */
  #issuer(): Promise<string> {
    this.#issuerOnce ??= this.#transport
      .call({ method: 'GET', path: routePath('metadata'), idempotent: true })
      .then((body) => String(pick('metadata', body).issuer));
    this.#issuerOnce.catch(() => {
      this.#issuerOnce = undefined; // try again next time
    });
    return this.#issuerOnce;
  }
}

/** A fresh DPoP key when the task is to be bound. */
const dpopKey = (options: TaskStartOptions) => (options.dpop ? DpopKey.generate() : Promise.resolve(undefined));

const startBody = (options: TaskStartOptions, key: DpopKey | undefined) => ({
  ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
  ...(options.scope !== undefined ? { scope: options.scope } : {}),
  ...(options.labels !== undefined ? { labels: options.labels } : {}),
  ...(key ? { dpop_jkt: key.jkt } : {}),
});
