import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import {
  CustosError,
  checkProxyPath,
  checkProxyQuery,
  isCustosError,
  PermissionDeniedError,
  type Principal,
  ProxyPathNotAllowedError,
  ProxyPathRefusedError,
  SealedError,
  UnauthenticatedError,
  type UpstreamRecord,
  upstreamUseResource,
} from '@custos/core';
import type { ProxyCall } from './proxy-audit.js';
import { credentialToken } from './proxy-credential.js';
import type { ProxyContext, ProxyRoute } from './proxy-handler.js';
import type { ProxyTarget } from './proxy-target.js';

type TaskPrincipal = Extract<Principal, { kind: 'task' }>;

/** What a CONNECT established: whose token, and which origin the tunnel is bound to. */
interface Tunnel {
  token: string;
  /** `https://host[:port]`, the origin of at least one upstream the task may use. */
  origin: string;
}
const tunnels = new WeakMap<object, Tunnel>();

/**
 * Forward mode's token: `Proxy-Authorization` only (Bearer, or Basic with
 * the token as password — see proxy-credential.ts). `Authorization`
 * belongs to the request for the upstream (an SDK sends its placeholder key
 * there); it is stripped like every other credential the caller sends.
 */
function forwardToken(req: IncomingMessage, call: ProxyCall): string {
  const value = req.headers['proxy-authorization'];
  const token = value === undefined ? undefined : credentialToken(value);
  if (!token) {
    call.reason = value === undefined ? 'proxy_no_credential' : 'proxy_credential_malformed';
    throw new UnauthenticatedError();
  }
  return token;
}

/**
 * The upstreams at `origin` the task may use, checked by Cedar one by one:
 * a task learns nothing about upstreams it may not use, not even that one
 * is bound to the host it asked for.
 */
async function usableUpstreams(
  ctx: ProxyContext,
  principal: TaskPrincipal,
  origin: string,
  sourceIp: string,
): Promise<UpstreamRecord[]> {
  const services = ctx.node.services();
  const usable: UpstreamRecord[] = [];
  for (const name of await services.upstreams.list()) {
    if (!services.authorize(principal, 'use', upstreamUseResource(name), { sourceIp, now: new Date() }).allowed) {
      continue;
    }
    const record = await services.upstreams.find(name);
    if (record && new URL(record.base_url).origin === origin) usable.push(record);
  }
  return usable;
}

/**
 * The upstream a forward-mode request is for: among those at its origin the
 * task may use, the one whose base path is the longest prefix of the
 * request's path (by whole segments); the path below it is what base-URL
 * mode would get. The full path is checked first (traversal, encodings), so
 * nothing can climb out of the base path once it is cut off. A path under
 * no usable upstream's base path is refused: the credential is bound to the
 * base URL's path too, not only its host.
 */
async function chooseTarget(
  ctx: ProxyContext,
  principal: TaskPrincipal,
  origin: string,
  rawTarget: string,
  sourceIp: string,
): Promise<ProxyTarget> {
  const q = rawTarget.indexOf('?');
  const fullPath = checkProxyPath(q < 0 ? rawTarget : rawTarget.slice(0, q));
  const query = checkProxyQuery(q < 0 ? '' : rawTarget.slice(q + 1));
  let best: { record: UpstreamRecord; base: string } | undefined;
  for (const record of await usableUpstreams(ctx, principal, origin, sourceIp)) {
    const pathname = new URL(record.base_url).pathname;
    const base = pathname === '/' ? '' : pathname;
    const under = fullPath === base || fullPath.startsWith(`${base}/`);
    if (under && (!best || base.length > best.base.length)) best = { record, base };
  }
  if (!best) throw new ProxyPathNotAllowedError();
  return { upstream: best.record.name, path: fullPath.slice(best.base.length) || '/', query };
}

/**
 * Plain HTTP in forward mode: an absolute-form request line
 * (`GET http://host:port/path HTTP/1.1`, what `HTTP_PROXY` clients send).
 * Only `http:` (an `https` upstream is reached by CONNECT); no userinfo; the
 * origin must be one of an upstream the task may use — the request line, not
 * the Host header, names it, and nothing is sent anywhere else.
 */
export function absoluteFormRoute(req: IncomingMessage, call: ProxyCall, ctx: ProxyContext): ProxyRoute {
  call.mode = 'forward';
  const m = /^http:\/\/([^/?#@\s]+)(\/[^?#\s]*)?(\?[^#\s]*)?$/i.exec(req.url ?? '');
  if (!m) throw new ProxyPathRefusedError('Forward mode takes http://host[:port]/path (https through CONNECT).');
  let origin: string;
  try {
    origin = new URL(`http://${m[1]}`).origin;
  } catch {
    throw new ProxyPathRefusedError('The host does not parse.');
  }
  const rawTarget = `${m[2] ?? '/'}${m[3] ?? ''}`;
  return {
    token: () => forwardToken(req, call),
    target: (principal) => chooseTarget(ctx, principal, origin, rawTarget, call.sourceIp),
  };
}

/** A request inside an intercepted CONNECT tunnel: the tunnel's token and origin, the request's path. */
export function tunnelRoute(req: IncomingMessage, call: ProxyCall, ctx: ProxyContext): ProxyRoute {
  call.mode = 'forward';
  const tunnel = tunnels.get(req.socket);
  if (!tunnel) throw new CustosError('CUSTOS_ERR_INTERNAL');
  return {
    token: () => tunnel.token,
    target: (principal) => chooseTarget(ctx, principal, tunnel.origin, req.url ?? '', call.sourceIp),
  };
}

const AUTHORITY =
  /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\]):(\d{1,5})$/i;

/**
 * `CONNECT host:port` (HTTPS_PROXY). Never a blind tunnel: custos answers
 * `200` only to a live task token (`Proxy-Authorization: Bearer …`) asking
 * for the origin of an upstream it may `use`, and then terminates TLS itself
 * with a certificate for that host from its internal CA (which the client
 * must trust: `custos ca export`). Each request inside is then handled as in
 * base-URL mode — token re-verified, `use` authorised, allow lists, audit,
 * the key injected, the answer redacted — and sent to the upstream's base
 * URL over a connection custos opens itself. Anything else is refused and
 * the connection closed: 407 without a valid token, 403 for a host no usable
 * upstream is bound to (so a task cannot tunnel to anywhere it likes).
 */
export async function handleConnect(
  ctx: ProxyContext,
  inner: Server,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  socket.on('error', () => undefined);
  const call: ProxyCall = {
    mode: 'forward',
    requestId: crypto.randomUUID(),
    method: 'CONNECT',
    sourceIp: req.socket.remoteAddress ?? '',
    started: performance.now(),
    principal: null,
    decision: null,
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  try {
    if (ctx.node.sealed) throw new SealedError();
    const services = ctx.node.services();
    const m = AUTHORITY.exec(req.url ?? '');
    const port = Number(m?.[5]);
    if (!m || port < 1 || port > 65_535) throw new ProxyPathRefusedError('CONNECT takes host:port.');
    const host = (m[1] as string).toLowerCase().replace(/^\[|\]$/g, '');
    const origin = new URL(`https://${m[1]}:${port}`).origin;
    call.path = origin;
    const token = forwardToken(req, call);
    const principal = await services
      .authenticate(token, { method: 'CONNECT', url: `${services.issuer}/proxy` })
      .catch((error: unknown) => {
        // By HMAC only, as every refused credential (see proxy-handler.ts).
        call.credential = services.auditHmac(token);
        throw error;
      });
    call.principal = principal;
    if (principal.kind !== 'task') {
      call.reason = 'proxy_requires_task_token';
      throw new PermissionDeniedError();
    }
    const usable = await usableUpstreams(ctx, principal, origin, call.sourceIp);
    if (usable.length === 0) {
      call.reason = 'connect_to_unbound_host';
      throw new PermissionDeniedError();
    }
    if (usable.length === 1) call.upstream = usable[0]?.name;
    const { key, cert } = await ctx.certs.for(host);
    call.status = 200;
    call.decision = 'allow';
    // Fail-closed like every call: no tunnel unless its opening is on record.
    await ctx.audit.record(call, 'tunnel');
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    const tls = new TLSSocket(socket as import('node:net').Socket, {
      isServer: true,
      key,
      cert,
      ALPNProtocols: ['http/1.1'],
    });
    tls.on('error', () => tls.destroy());
    tunnels.set(tls, { token, origin });
    inner.emit('connection', tls);
  } catch (error) {
    const known = isCustosError(error) ? error : new CustosError('CUSTOS_ERR_INTERNAL');
    // RFC 9110 §15.5.8: a proxy asks for credentials with 407.
    const status = known.status === 401 ? 407 : known.status;
    call.errorCode = known.code;
    call.status = status;
    call.decision ??= status === 407 || status === 403 ? 'deny' : 'error';
    if (!ctx.node.sealed) {
      await ctx.audit.record(call, 'tunnel').catch((auditError: unknown) => {
        ctx.logger.error(
          { code: 'CUSTOS_ERR_AUDIT_UNAVAILABLE', err: auditError },
          'proxy: CONNECT refusal not audited',
        );
      });
    }
    const body = JSON.stringify({ error: known.toJSON() });
    socket.end(
      `HTTP/1.1 ${status} ${status === 407 ? 'Proxy Authentication Required' : 'Refused'}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `${status === 407 ? 'proxy-authenticate: Bearer realm="custos-proxy"\r\n' : ''}connection: close\r\n\r\n${body}`,
    );
  }
}
