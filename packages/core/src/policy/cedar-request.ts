import { isIP } from 'node:net';
import { ValidationError } from '../errors/index.js';
import type { AuthzPrincipal, AuthzRequest } from './authz-request.js';
import type { CedarValueJson, EntityJson, EntityUidJson, StatefulAuthorizationCall } from './cedar-runtime.js';
import type { pathAncestors } from './resource-path.js';
import type { EntityNeeds, RequestNeeds } from './statement-needs.js';

const ACTION_TYPE = 'Custos::Action';
const PATH_TYPE = 'Custos::Path';
const UNKNOWN_IP = '0.0.0.0';

/**
 * Builds the Cedar call for `req` against the preparsed set `psetId`: the
 * principal entity, the resource entity whose parents are `ancestors` (its
 * folder prefixes, from {@link pathAncestors}), and the context — each cut down to what `needs` says the
 * statements can observe. No policy is parsed here.
 */
export function buildCedarCall(
  req: AuthzRequest,
  ancestors: readonly string[],
  psetId: string,
  needs: RequestNeeds,
): StatefulAuthorizationCall {
  const principalUid: EntityUidJson = { type: `Custos::${req.principal.type}`, id: req.principal.id };
  const resourceUid: EntityUidJson = { type: PATH_TYPE, id: req.path };
  const entities: EntityJson[] = [];

  const p = needs.principal;
  if (p.parents || p.attrs === 'all' || p.attrs.size > 0) {
    entities.push({
      uid: principalUid,
      attrs: pick(principalAttrs(req.principal, req.policies), p),
      parents: p.parents && req.principal.type === 'Task' ? principalParents(req.principal) : [],
    });
  }
  const r = needs.resource;
  if (r.parents || r.attrs === 'all' || r.attrs.size > 0) {
    entities.push({
      uid: resourceUid,
      attrs: pick({ path: req.path }, r),
      parents: r.parents ? ancestors.map((id) => ({ type: PATH_TYPE, id })) : [],
    });
  }

  return {
    principal: principalUid,
    action: { type: ACTION_TYPE, id: req.action },
    resource: resourceUid,
    context: buildContext(req, needs.context),
    entities,
    preparsedPolicySetId: psetId,
  };
}

function principalAttrs(p: AuthzPrincipal, policies: readonly string[]): Record<string, CedarValueJson> {
  switch (p.type) {
    case 'Token':
      return { policies: [...policies] };
    case 'Identity':
      return { role: p.attrs.role, policies: [...policies] };
    case 'Task': {
      const { role, depth, labels } = p.attrs;
      return { role, depth, labels: [...(labels ?? [])], policies: [...policies] };
    }
  }
}

function principalParents(p: Extract<AuthzPrincipal, { type: 'Task' }>): EntityUidJson[] {
  return (p.parents ?? []).map(({ type, id }) => ({ type: `Custos::${type}`, id }));
}

function pick(attrs: Record<string, CedarValueJson>, needs: EntityNeeds): Record<string, CedarValueJson> {
  if (needs.attrs === 'all') return attrs;
  const out: Record<string, CedarValueJson> = {};
  for (const k of needs.attrs) {
    const v = attrs[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function buildContext(req: AuthzRequest, fields: Set<string> | 'all'): Record<string, CedarValueJson> {
  const want = (f: string) => fields === 'all' || fields.has(f);
  const c = req.context ?? {};
  const out: Record<string, CedarValueJson> = {};
  if (want('now')) out.now = nowRecord(c.now ?? new Date());
  if (want('source_ip')) out.source_ip = { __extn: { fn: 'ip', arg: normaliseIp(c.sourceIp) } };
  if (want('depth')) out.depth = c.depth ?? (req.principal.type === 'Task' ? req.principal.attrs.depth : 0);
  if (want('task_chain')) out.task_chain = [...(c.taskChain ?? [])];
  if (want('elevation')) {
    out.elevation = c.elevation
      ? { active: true, request_id: c.elevation.requestId, scope: c.elevation.scope }
      : { active: false, request_id: '', scope: '' };
  }
  return out;
}

function nowRecord(d: Date): Record<string, CedarValueJson> {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new ValidationError('invalid request time');
  return {
    epoch: Math.floor(ms / 1000),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    weekday: d.getUTCDay(),
    date: d.toISOString().slice(0, 10),
  };
}

/**
 * Node reports IPv4 clients of a dual-stack socket as `::ffff:10.1.2.3`;
 * unwrap them so `isInRange(ip("10.0.0.0/8"))` matches as operators expect.
 */
function normaliseIp(ip: string | undefined): string {
  if (ip === undefined || ip === '') return UNKNOWN_IP;
  // A zone id (`fe80::1%eth0`) names a local interface, not an address.
  const bare = ip.replace(/%.*$/, '');
  const unwrapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1] ?? bare;
  if (isIP(unwrapped) === 0) throw new ValidationError('invalid source address');
  return unwrapped;
}
