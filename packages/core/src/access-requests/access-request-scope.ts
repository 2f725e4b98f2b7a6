import { formatScope, isScopeSubset, parseScope, type ScopeEntry } from '../policy/index.js';

/**
 * The resource an approver needs `approve` on, per scope entry:
 * `sys/requests/<action>/<path>` (`read:kv/finance/ledger` →
 * `sys/requests/read/kv/finance/ledger`; a prefix entry `read:kv/finance/*`
 * → the folder `sys/requests/read/kv/finance/`). So a policy can let the
 * finance leads approve finance reads and nothing else:
 * `permit(principal, action == Custos::Action::"approve", resource in Custos::Path::"sys/requests/read/kv/finance/");`
 */
export function approveResources(scope: readonly ScopeEntry[]): string[] {
  return scope.map((e) => `sys/requests/${e.action}/${e.path}`);
}

/** The resource of one request itself (show, list, events): `sys/requests/<id>`. */
export function requestResource(id: string): string {
  return `sys/requests/${id}`;
}

/** Scope of a request: parsed and normalised (throws CUSTOS_ERR_VALIDATION). */
export function normaliseRequestScope(text: string): string {
  return formatScope(parseScope(text));
}

/** Whether `narrower` asks for no more than `wider`. */
export function scopeWithin(narrower: string, wider: string): boolean {
  return isScopeSubset(parseScope(narrower), parseScope(wider));
}

/** The console page of a request (`<public base URL>/ui/#/requests/<id>`), for notifications. */
export function requestConsoleLink(baseUrl: string, id: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/ui/#/requests/${encodeURIComponent(id)}`;
}
