import { randomUUID } from 'node:crypto';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import {
  CustosError,
  type CustosNode,
  type HoneytokenWatch,
  isCustosError,
  methodAllowed,
  openEgressRequest,
  PermissionDeniedError,
  type Principal,
  ProxyMethodRefusedError,
  ProxyPathNotAllowedError,
  pathAllowed,
  refusedTaskSubject,
  SealedError,
  UnauthenticatedError,
  UpstreamFailedError,
  UpstreamResponseRefusedError,
  UpstreamTimeoutError,
  upstreamUseResource,
} from '@custos/core';
import { createRedactNodeStream, type Redactor } from '@custos/redact';
import type { Logger } from 'pino';
import type { ProxyAgents } from './proxy-agents.js';
import type { ProxyAudit, ProxyCall } from './proxy-audit.js';
import { ProxyBodyWatch } from './proxy-body-watch.js';
import type { ProxyCerts } from './proxy-certs.js';
import { credentialToken } from './proxy-credential.js';
import {
  callerResponseHeaders,
  PROXY_ERROR_HEADER,
  redactableResponse,
  upstreamQuery,
  upstreamRequestHeaders,
} from './proxy-headers.js';
import type { ProxyOptions } from './proxy-options.js';
import type { ProxyRedactors } from './proxy-redactor.js';
import { type ProxyTarget, parseProxyTarget } from './proxy-target.js';

export interface ProxyContext {
  node: CustosNode;
  audit: ProxyAudit;
  redactors: ProxyRedactors;
  agents: ProxyAgents;
  certs: ProxyCerts;
  options: ProxyOptions;
  logger: Logger;
}

/**
 * One proxied call: base-URL mode (`/u/NAME/<path>`, the default route) or
 * forward mode (`routeOf` from proxy-forward.ts: an absolute URL, or a
 * request inside an intercepted CONNECT tunnel) — the same steps for both.
 *
 * In order, each step refusing before the next can happen:
 * 1. the target is taken from the request line alone (never Host), and its
 *    path and query checked (no traversal in any spelling, no control
 *    characters); in forward mode the upstream is chosen, among those the
 *    task may use, by origin and base path;
 * 2. the caller's token is verified as every route verifies it (signature,
 *    expiry, and every task of its chain live: revoking any ancestor refuses
 *    the next call), and must be a task token — the proxy is for agents;
 * 3. `use` on `upstream/NAME` is authorised (scope ∩ role policies), before
 *    the upstream is even looked up, so a caller without it cannot tell
 *    which upstreams exist;
 * 4. method and path are checked against the upstream's allow lists, and a
 *    declared body size against the limit;
 * 5. the secret is read through the barrier (the tree's pinned version);
 * 6. the call is audited, fail-closed;
 * 7. only then is a connection opened — to the base URL's scheme, host and
 *    port, through the egress policy extended by this upstream's
 *    `allow_hosts` only — and the body streamed, counted against the limit.
 *
 * The response streams back through the redactor (the injected value in all
 * its forms, and every detector); redirects are not followed, just passed
 * back, redacted like everything else.
 */
export async function handleProxyRequest(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  routeOf: (req: IncomingMessage, call: ProxyCall, ctx: ProxyContext) => ProxyRoute = baseUrlRoute,
): Promise<void> {
  const call: ProxyCall = {
    mode: 'base-url',
    requestId: randomUUID(),
    method: req.method ?? 'GET',
    sourceIp: req.socket.remoteAddress ?? '',
    started: performance.now(),
    principal: null,
    decision: null,
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  // A caller that resets mid-upload or mid-answer must not become an
  // unhandled 'error' (a crash); the exchange sees it through 'close'.
  req.on('error', () => undefined);
  res.on('error', () => undefined);
  // `forwarded`: the call was audited as going out; `exchanging`: the body is being streamed.
  let forwarded = false;
  let exchanging = false;
  try {
    if (ctx.node.sealed) throw new SealedError();
    const services = ctx.node.services();
    const route = routeOf(req, call, ctx);
    const token = route.token();
    const principal = await services
      .authenticate(token, { method: call.method, url: `${services.issuer}/proxy` })
      .catch((error: unknown) => {
        // By HMAC only, as the auth plugin records refusals (a presented honeytoken is recognised by it).
        call.credential = services.auditHmac(token);
        throw error;
      });
    call.principal = principal;
    if (principal.kind !== 'task') {
      call.reason = 'proxy_requires_task_token';
      throw new PermissionDeniedError();
    }
    const target = await route.target(principal);
    call.upstream = target.upstream;
    call.path = target.path;
    call.presentedValue = presentedHoneytoken(services.honeytokens.watch, req, target, call.mode);
    const resource = upstreamUseResource(target.upstream);
    if (!services.authorize(principal, 'use', resource, { sourceIp: call.sourceIp, now: new Date() }).allowed) {
      throw new PermissionDeniedError();
    }
    const upstream = await services.upstreams.get(target.upstream);
    if (!methodAllowed(upstream.allow_methods, call.method)) throw new ProxyMethodRefusedError();
    if (!pathAllowed(upstream.allow_paths, target.path)) throw new ProxyPathNotAllowedError();
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > ctx.options.bodyLimit) throw tooLarge(ctx);
    call.secretPath = upstream.secret_path;
    const value = await services.upstreams.credential(upstream, principal.task.chain[0] ?? principal.task.task_id);
    const redactor = ctx.redactors.for(upstream.name, value);
    const headers = upstreamRequestHeaders(req, upstream.inject, value);
    const base = new URL(upstream.base_url);
    const basePath = base.pathname === '/' ? '' : base.pathname;
    const query = upstreamQuery(target.query, upstream.inject, value);
    call.decision = 'allow';
    await ctx.audit.record(call, 'request');
    call.decision = null;
    forwarded = true;
    const outgoing = await openEgressRequest(services.upstreams.egressFor(upstream), base, {
      method: call.method,
      headers,
      path: `${basePath}${target.path}${query ? `?${query}` : ''}`,
      agent: ctx.agents.for(upstream),
    });
    exchanging = true;
    await exchange(ctx, call, req, res, outgoing, redactor);
  } catch (error) {
    if (forwarded || ctx.node.sealed) {
      refuse(ctx, call, res, error);
    } else {
      // A call that never went out: its refusal is recorded before the
      // answer leaves, as the audit plugin does for routes.
      noteRefusal(ctx, call, error);
      let answer = error;
      try {
        await ctx.audit.record(call, 'refusal');
      } catch (auditError) {
        ctx.logger.error(
          { code: 'CUSTOS_ERR_AUDIT_UNAVAILABLE', err: auditError, request_id: call.requestId },
          'proxy: refusal not audited',
        );
        answer = auditError;
      }
      refuse(ctx, call, res, answer);
    }
    if (!exchanging) drain(req, res);
  } finally {
    if (forwarded && !ctx.node.sealed) {
      // The outcome of a call that went out, once it has ended either way.
      await ctx.audit.record(call, 'response').catch((error: unknown) => {
        ctx.logger.error(
          { code: 'CUSTOS_ERR_AUDIT_UNAVAILABLE', err: error, request_id: call.requestId },
          'proxy: outcome not audited',
        );
      });
    }
  }
}

/**
 * The audit-key HMAC of a honeytoken's value carried in the request — in a
 * header (other than the caller's own credential: `Proxy-Authorization`,
 * and in base-URL mode `Authorization`, which were authenticated — a decoy
 * there was refused and recorded as a login attempt; in forward mode
 * `Authorization` is the API's own header, an SDK's key, and is looked at),
 * the path or a query parameter — or undefined. Set lookups and at most a few HMACs (only candidates of a
 * honeytoken value's length are hashed). The call goes on as any other:
 * refusing it would tell the caller the value is special; the decoy fails
 * upstream as a bad key would. The body is watched as it streams out (ProxyBodyWatch).
 */
export function presentedHoneytoken(
  watch: HoneytokenWatch,
  req: IncomingMessage,
  target: ProxyTarget,
  mode: ProxyCall['mode'],
): string | undefined {
  const texts: string[] = [target.path];
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'proxy-authorization' || (name === 'authorization' && mode === 'base-url')) continue;
    if (value === undefined) continue;
    if (typeof value === 'string') texts.push(value);
    else texts.push(...value);
  }
  if (target.query !== '') {
    for (const [key, value] of new URLSearchParams(target.query)) texts.push(key, value);
  }
  return watch.findValue(texts);
}

/** How a request names its upstream and carries its task token. */
export interface ProxyRoute {
  /** The caller's task token (throws CUSTOS_ERR_UNAUTHENTICATED). */
  token(): string;
  /** The upstream and the checked path and query below its base URL, for this caller (throws). */
  target(principal: Extract<Principal, { kind: 'task' }>): Promise<ProxyTarget>;
}

/**
 * Base-URL mode: `/u/NAME/<path>`, the target parsed from the request line
 * at once (so a refused path is refused before any token is looked at), the
 * token from `Authorization` or `Proxy-Authorization`.
 */
function baseUrlRoute(req: IncomingMessage, call: ProxyCall): ProxyRoute {
  const target = parseProxyTarget(req.url ?? '', (name) => {
    call.upstream = name;
  });
  call.path = target.path;
  return { token: () => proxyToken(req, call), target: async () => target };
}

/**
 * The caller's task token: `Authorization: Bearer …` (base-URL mode, what
 * SDKs send as their "API key") or `Proxy-Authorization: Bearer …`. Both are
 * stripped before anything is forwarded. Two different tokens are refused
 * rather than one picked: which one acted must never be a guess.
 */
export function proxyToken(req: IncomingMessage, call: ProxyCall): string {
  const read = (value: string | undefined) => {
    if (value === undefined) return undefined;
    const token = credentialToken(value);
    if (!token) {
      call.reason = 'proxy_credential_malformed';
      throw new UnauthenticatedError();
    }
    return token;
  };
  const a = read(req.headers.authorization);
  const b = read(req.headers['proxy-authorization']);
  if (a !== undefined && b !== undefined && a !== b) {
    call.reason = 'proxy_two_credentials';
    throw new UnauthenticatedError();
  }
  const token = a ?? b;
  if (!token) {
    call.reason = 'proxy_no_credential';
    throw new UnauthenticatedError();
  }
  return token;
}

const tooLarge = (ctx: ProxyContext) =>
  new CustosError('CUSTOS_ERR_BODY_TOO_LARGE', `The proxy forwards at most ${ctx.options.bodyLimit} bytes.`);

/** Streams the body out and the answer back; resolves when the exchange has ended, either way. */
function exchange(
  ctx: ProxyContext,
  call: ProxyCall,
  req: IncomingMessage,
  res: ServerResponse,
  outgoing: ClientRequest,
  redactor: Redactor,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    /**
     * Ends the exchange once. With an error: before the answer's head has
     * gone, the caller gets the refusal with its code; after, the only honest
     * signal left is an incomplete body (the connection is cut), and the
     * code goes to the audit event, next to the upstream's status.
     */
    const end = (error?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(headersTimer);
      clearInterval(watch);
      if (error !== undefined) {
        outgoing.destroy();
        if (res.headersSent) {
          call.errorCode = isCustosError(error) ? error.code : 'CUSTOS_ERR_INTERNAL';
          call.decision = 'error';
          res.destroy();
        } else {
          refuse(ctx, call, res, error);
          drain(req, res);
        }
      }
      resolve();
    };
    // The upstream must start answering within headersTimeoutMs…
    const headersTimer = setTimeout(
      () => end(new UpstreamTimeoutError('No response head in time.')),
      ctx.options.headersTimeoutMs,
    );
    // …and neither side may then stay silent longer than idleTimeoutMs.
    outgoing.setTimeout(ctx.options.idleTimeoutMs, () => end(new UpstreamTimeoutError('The upstream went silent.')));
    outgoing.on('error', (error) =>
      end(
        isCustosError(error)
          ? error
          : new UpstreamFailedError('The upstream could not be reached or cut the connection.'),
      ),
    );
    // A call in flight — a long model stream — does not outlive the task
    // that made it, nor the node's seal: checked every livenessIntervalMs, so
    // revoking any ancestor cuts the stream within that interval, not only
    // the task's next call.
    const watch = setInterval(() => {
      void stillLive(ctx, call).then((refusal) => {
        if (refusal) end(refusal);
      });
    }, ctx.options.livenessIntervalMs);
    // The caller went away: nothing more is sent for it.
    res.on('close', () => {
      if (!res.writableFinished && !done) {
        call.reason ??= 'caller_disconnected';
        outgoing.destroy();
        end();
      }
    });

    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    // A decoy's value in the body (only while honeytokens exist): seen as the
    // body streams out, recorded with the call's outcome (data.presented_value).
    const honeytokens = ctx.node.services().honeytokens.watch;
    const bodyWatch = hasBody && honeytokens.watching ? new ProxyBodyWatch(honeytokens) : undefined;
    if (bodyWatch) {
      req.on('end', () => {
        bodyWatch.end();
        call.presentedValue ??= bodyWatch.found;
      });
    }
    if (hasBody) {
      // Counted before the pipe sees each chunk (this listener is added first):
      // the chunk that crosses the limit is never forwarded.
      req.on('data', (chunk: Buffer) => {
        call.bytesIn += chunk.byteLength;
        if (bodyWatch) {
          bodyWatch.write(chunk);
          call.presentedValue ??= bodyWatch.found;
        }
        if (call.bytesIn > ctx.options.bodyLimit && !done) {
          req.unpipe(outgoing);
          end(tooLarge(ctx));
        }
      });
      req.pipe(outgoing);
    } else {
      outgoing.end();
    }

    outgoing.on('response', (answer: IncomingMessage) => {
      clearTimeout(headersTimer);
      if (done) {
        answer.destroy();
        return;
      }
      const status = answer.statusCode ?? 502;
      const bodyless =
        call.method === 'HEAD' || status === 204 || status === 304 || answer.headers['content-length'] === '0';
      const unredactable = bodyless ? undefined : redactableResponse(answer.headers);
      if (unredactable) {
        answer.destroy();
        end(new UpstreamResponseRefusedError(unredactable));
        return;
      }
      call.status = status;
      // custos allowed the call; what the upstream answered is its business (and in `status`).
      call.decision = 'allow';
      res.writeHead(status, { ...callerResponseHeaders(answer, redactor), 'x-custos-request-id': call.requestId });
      const upstreamCut = () => end(new UpstreamFailedError('The upstream cut the answer.'));
      answer.on('error', upstreamCut);
      answer.on('aborted', upstreamCut);
      res.on('finish', () => end());
      if (bodyless) {
        answer.resume();
        answer.on('end', () => res.end());
        return;
      }
      const redact = createRedactNodeStream(redactor);
      answer.on('data', (chunk: Buffer) => {
        call.bytesOut += chunk.byteLength;
      });
      answer.on('end', () => {
        if (!answer.complete) upstreamCut();
      });
      redact.on('error', () => end(new UpstreamFailedError('The answer could not be redacted.')));
      answer.pipe(redact).pipe(res);
    });
  });
}

/**
 * Why a call in flight must stop now, if it must: the node was sealed, the
 * task expired, or it or an ancestor was revoked or ended.
 */
async function stillLive(ctx: ProxyContext, call: ProxyCall): Promise<CustosError | undefined> {
  if (ctx.node.sealed) return new SealedError();
  const principal = call.principal;
  if (principal?.kind !== 'task') return undefined;
  if (Date.now() >= principal.task.exp * 1000) {
    call.reason = 'task_expired_mid_call';
    return new UnauthenticatedError();
  }
  try {
    const status = await ctx.node.services().tasks.isActive(principal.task.chain);
    if (status.active) return undefined;
  } catch {
    // Cannot tell (storage failing): a call that cannot be vouched for stops.
  }
  call.reason = 'task_ended_mid_call';
  return new UnauthenticatedError();
}

/** Records on the call what a refusal is (code, status, decision), for its audit event. */
function noteRefusal(ctx: ProxyContext, call: ProxyCall, error: unknown): CustosError {
  const known = isCustosError(error) ? error : new CustosError('CUSTOS_ERR_INTERNAL');
  if (!isCustosError(error)) ctx.logger.error({ err: error, request_id: call.requestId }, 'proxy: unexpected failure');
  call.errorCode = known.code;
  call.status = known.status;
  // Why a token was refused, and whose it was: recorded, never answered.
  const auditReason = (error as { auditReason?: unknown })?.auditReason;
  if (call.reason === undefined && typeof auditReason === 'string') call.reason = auditReason.slice(0, 64);
  const refusedTask = refusedTaskSubject(error);
  if (refusedTask) call.refusedTask = refusedTask;
  if (call.decision === null) call.decision = known.status === 401 || known.status === 403 ? 'deny' : 'error';
  return known;
}

/** Answers a refusal as JSON with its code, unless the answer has begun (then it can only be cut). */
function refuse(ctx: ProxyContext, call: ProxyCall, res: ServerResponse, error: unknown): void {
  const known =
    call.errorCode !== undefined && isCustosError(error) && error.code === call.errorCode
      ? error
      : noteRefusal(ctx, call, error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: known.toJSON() });
  res.writeHead(known.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-custos-request-id': call.requestId,
    // Marks the answer as the proxy's own refusal, not the upstream's: a
    // client (the SDK) throws it as a custos error with this code, and
    // passes every upstream answer through. An upstream cannot forge it:
    // callerResponseHeaders drops the header from upstream answers.
    [PROXY_ERROR_HEADER]: known.code,
    ...(known.status === 401 ? { 'www-authenticate': 'Bearer realm="custos-proxy"' } : {}),
  });
  res.end(body);
}

/**
 * A refused request's body is not read: once the refusal is written, the
 * connection is closed rather than kept alive with an unread (possibly
 * never-ending) body on it.
 */
function drain(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return;
  res.once('finish', () => req.socket.destroySoon());
  req.unpipe();
  req.resume();
}
