import { POLICY_ACTIONS } from './policy-action.js';

/**
 * The Cedar schema every custos policy is validated against (strict mode), in
 * Cedar's schema syntax.
 *
 * - Resources are all `Custos::Path` entities, secrets and system objects alike
 *   (`kv/finance/enrichment-api`, `sys/policies/NAME`, `sys/audit`), so one
 *   mechanism covers everything. A path is `in` each of its folder prefixes
 *   (`kv/finance/enrichment-api` in `kv/finance/` in `kv/`), which the request
 *   builder sets up per request, and carries its text as `path` for `like`.
 * - Principals: operator tokens, identities and tasks. Every principal carries
 *   the names of the policies it holds. A token has no other attribute: its
 *   display name is chosen by whoever created it, so it is cosmetic and never
 *   something a policy may read (name a token by its accessor,
 *   `principal == Custos::Token::"acc_…"`, or by the policies it holds). A task is `in` its identity and its
 *   ancestor tasks, so `principal in Custos::Identity::"gpu-node-7"` covers the
 *   tasks that identity started.
 * - Context: the request time (UTC), the source address (`ipaddr`, so
 *   `isInRange` works), the delegation depth, the task chain, and the
 *   just-in-time elevation the request is decided under (`elevation.active`
 *   is false unless the task's own scope did not cover it and an approved
 *   request's did — see docs/jit.md).
 */
export const CUSTOS_CEDAR_SCHEMA = `namespace Custos {
  type Now = {
    epoch: Long,
    hour: Long,
    minute: Long,
    weekday: Long,
    date: String,
  };
  type RequestContext = {
    now: Now,
    source_ip: ipaddr,
    depth: Long,
    task_chain: Set<String>,
    elevation: Elevation,
  };
  type Elevation = {
    active: Bool,
    request_id: String,
    scope: String,
  };

  entity Path in [Path] = { path: String };

  entity Token = { policies: Set<String> };
  entity Identity = { role: String, policies: Set<String> };
  entity Task in [Identity, Task] = {
    role: String,
    depth: Long,
    labels: Set<String>,
    policies: Set<String>,
  };

  action ${POLICY_ACTIONS.map((a) => `"${a}"`).join(', ')} appliesTo {
    principal: [Token, Identity, Task],
    resource: [Path],
    context: RequestContext,
  };
}
`;
