import { isAuthorized } from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuthzPrincipal, AuthzRequest } from './authz-request.js';
import { CUSTOS_CEDAR_SCHEMA } from './custos-schema.js';
import type { PolicyAction } from './policy-action.js';
import { PolicyEngine } from './policy-engine.js';
import { pathAncestors } from './resource-path.js';

// The engine hands Cedar less than a plain call would: only the statements
// whose action and resource scope admit the request (with the resource scope
// removed), only the request parts they read, and memoised answers. This
// checks that none of that changes a decision: for random policy sets and
// requests, the engine must agree with one plain, schema-validated Cedar call
// given every statement and the full request.

const A = (a: string) => `Custos::Action::"${a}"`;
const P = (p: string) => `Custos::Path::"${p}"`;

const POOL = [
  `permit(principal, action == ${A('read')}, resource in ${P('kv/a/')});`,
  `permit(principal, action in [${A('read')}, ${A('list')}], resource == ${P('kv/a/b')});`,
  `permit(principal, action, resource) when { resource.path like "kv/*/b" };`,
  `forbid(principal, action == ${A('write')}, resource in ${P('kv/b/')});`,
  `permit(principal is Custos::Task, action, resource in ${P('kv/')}) when { principal.depth < 2 };`,
  `permit(principal in Custos::Identity::"id-1", action, resource) when { context.now.hour >= 8 };`,
  `forbid(principal, action, resource) when { context.source_ip.isInRange(ip("192.168.0.0/16")) };`,
  `permit(principal, action, resource is Custos::Path in ${P('kv/a/')}) when { context.task_chain.contains("t0") };`,
  `permit(principal, action == ${A('list')}, resource) when { resource in ${P('kv/b/')} };`,
  `permit(principal is Custos::Token, action, resource) when { principal.policies.contains("p1") && context.depth == 0 };`,
  `permit(principal, action, resource) when { context.now.weekday == 0 || context.now.minute > 30 };`,
  `permit(principal, action, resource) when { if context.depth > 0 then resource.path like "kv/a/*" else false };`,
  `forbid(principal is Custos::Task, action, resource in ${P('kv/a/b/')}) unless { principal.labels.contains("x") };`,
  `permit(principal, action in [${A('write')}, ${A('delete')}], resource == ${P('kv/b/')});`,
  `forbid(principal, action, resource) when { context == { now: context.now, source_ip: ip("10.0.0.1"), depth: 1, task_chain: context.task_chain, elevation: context.elevation } };`,
];

const pathArb = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 0, maxLength: 3 }), fc.boolean())
  .map(([segs, folder]) => ['kv', ...segs].join('/') + (folder ? '/' : ''));
const principalArb: fc.Arbitrary<AuthzPrincipal> = fc.oneof(
  fc.constant({ type: 'Token' as const, id: 'tok' }),
  fc.constantFrom('id-1', 'id-2').map((id) => ({ type: 'Identity' as const, id, attrs: { role: 'r' } })),
  fc
    .record({ depth: fc.nat(3), labels: fc.subarray(['x', 'y']), identity: fc.constantFrom('id-1', 'id-2') })
    .map(({ depth, labels, identity }) => ({
      type: 'Task' as const,
      id: `task-${depth}`,
      attrs: { role: 'r', depth, labels },
      parents: [{ type: 'Identity' as const, id: identity }],
    })),
);
const requestArb = fc.record({
  principal: principalArb,
  policies: fc.subarray(['p0', 'p1', 'p2', 'p3']),
  action: fc.constantFrom<PolicyAction>('read', 'list', 'write', 'delete'),
  path: pathArb,
  context: fc.record({
    now: fc.integer({ min: 1_700_000_000, max: 1_700_000_000 + 14 * 86_400 }).map((s) => new Date(s * 1000)),
    sourceIp: fc.constantFrom('10.0.0.1', '192.168.3.4', '::ffff:10.0.0.1'),
    depth: fc.nat(2),
    taskChain: fc.subarray(['t0', 't1']),
  }),
});
const documentsArb = fc.array(fc.subarray(POOL, { minLength: 1, maxLength: 4 }), { minLength: 4, maxLength: 4 });

function reference(docs: string[][], req: AuthzRequest) {
  const held = new Set(req.policies);
  const statements: Record<string, string> = {};
  docs.forEach((d, n) => {
    if (!held.has(`p${n}`)) return;
    d.forEach((s, i) => {
      statements[`p${n}#${i}`] = s;
    });
  });
  const p = req.principal;
  const policies = [...new Set(req.policies)];
  const attrs =
    p.type === 'Token'
      ? { policies }
      : p.type === 'Identity'
        ? { role: p.attrs.role, policies }
        : { role: p.attrs.role, depth: p.attrs.depth, labels: [...(p.attrs.labels ?? [])], policies };
  const parents = p.type === 'Task' ? (p.parents ?? []).map((x) => ({ type: `Custos::${x.type}`, id: x.id })) : [];
  const c = req.context ?? {};
  const now = c.now as Date;
  const answer = isAuthorized({
    principal: { type: `Custos::${p.type}`, id: p.id },
    action: { type: 'Custos::Action', id: req.action },
    resource: { type: 'Custos::Path', id: req.path },
    context: {
      now: {
        epoch: Math.floor(now.getTime() / 1000),
        hour: now.getUTCHours(),
        minute: now.getUTCMinutes(),
        weekday: now.getUTCDay(),
        date: now.toISOString().slice(0, 10),
      },
      source_ip: { __extn: { fn: 'ip', arg: (c.sourceIp as string).replace('::ffff:', '') } },
      depth: c.depth ?? 0,
      elevation: { active: false, request_id: '', scope: '' },
      task_chain: [...(c.taskChain ?? [])],
    },
    schema: CUSTOS_CEDAR_SCHEMA,
    validateRequest: true,
    policies: { staticPolicies: statements },
    entities: [
      { uid: { type: `Custos::${p.type}`, id: p.id }, attrs, parents },
      {
        uid: { type: 'Custos::Path', id: req.path },
        attrs: { path: req.path },
        parents: pathAncestors(req.path).map((id) => ({ type: 'Custos::Path', id })),
      },
    ],
  });
  if (answer.type !== 'success') throw new Error(JSON.stringify(answer.errors));
  const { decision, diagnostics } = answer.response;
  return {
    allowed: decision === 'allow',
    reasons: [...diagnostics.reason].sort(),
    errors: diagnostics.errors.map((e) => e.policyId).sort(),
  };
}

describe('PolicyEngine agrees with plain Cedar', () => {
  it.each([
    ['memo on, roomy cache', {}],
    ['memo off, tiny cache', { maxDecisionsPerSet: 0, maxCachedSets: 2 }],
  ])(
    '%s',
    (_, options) => {
      fc.assert(
        fc.property(documentsArb, fc.array(requestArb, { minLength: 1, maxLength: 12 }), (docs, requests) => {
          const engine = new PolicyEngine(options);
          docs.forEach((d, n) => {
            engine.set(`p${n}`, d.join('\n'));
          });
          for (const req of requests) {
            // Twice, so memoised answers are compared as well.
            for (let k = 0; k < 2; k++) {
              expect({ ...engine.authorize(req) }).toEqual(reference(docs, req));
            }
          }
        }),
        { numRuns: 40 },
      );
    },
    120_000,
  );
});
