import type { HistoryContext } from './history-context.js';
import type { HistoryTask } from './history-events.js';

/**
 * How each workload of a generated history logs in — its role, its identity
 * and the login route of its auth method — shared by the workloads and the
 * incidents that impersonate them, so an incident is the same workload
 * doing something unusual, not a look-alike.
 */
type Login = { task: HistoryTask; at: number };

/** GPU inference nodes: mTLS certificates custos issued (SPIFFE ids). */
export const gpuLogin = (ctx: HistoryContext, at: number, node: { identity: string }, ip: string): Login =>
  ctx.login(at, 'gpu-infer', node.identity, ip, '/v1/auth/cert/login');

/** API gateways: certificates too. */
export const gatewayLogin = (ctx: HistoryContext, at: number, gw: { identity: string }, ip: string): Login =>
  ctx.login(at, 'api-gateway', gw.identity, ip, '/v1/auth/cert/login');

/** CI: a GitHub Actions workload JWT; the identity is `jwt:<iss>#<sub>` of the repository's main branch. */
export const ciLogin = (ctx: HistoryContext, at: number, repo: string, ip: string): Login =>
  ctx.login(
    at,
    'ci',
    `jwt:https://token.actions.githubusercontent.com#repo:${repo}:ref:refs/heads/main`,
    ip,
    '/v1/auth/jwt/login',
  );

/** Coordinators: a bootstrap token each, so a new identity (`bootstrap:<accessor>`) at every login. */
export const coordLogin = (ctx: HistoryContext, at: number, ip: string, accessor?: string): Login =>
  ctx.login(at, 'coord', `bootstrap:${accessor ?? `bac_${ctx.rng.base64url(16)}`}`, ip);

/** The nightly ETL: a Kubernetes service account's projected token (a workload JWT). */
export const etlLogin = (ctx: HistoryContext, at: number, identity: string, ip: string): Login =>
  ctx.login(at, 'etl', identity, ip, '/v1/auth/jwt/login');
