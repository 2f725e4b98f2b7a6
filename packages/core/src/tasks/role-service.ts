import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { OpenedEntryMemo } from '../common/opened-entry-memo.js';
import { NotFoundError, ValidationError } from '../errors/index.js';
import { formatScope, isPolicyName, parseScope } from '../policy/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import { validateActiveWindows } from './active-hours.js';
import type { AuthMethodKind, Role, RoleInput, RoleSuspension } from './role-types.js';
import { grantableLabelKeys, operatorLabels } from './task-labels.js';

const ROLES = 'role';
const ROLE_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const AUTH_KINDS: readonly AuthMethodKind[] = ['bootstrap', 'jwt', 'cert', 'aws'];
/** No task lives longer than a day: tasks are minutes of work, not identities. */
export const MAX_TASK_TTL_MS = 24 * 3_600_000;
export const MAX_DELEGATION_DEPTH = 16;
/**
 * Identities suspended under one role at most: the list lives in the role
 * record, read on every authentication. Beyond it, suspend the role.
 */
export const MAX_SUSPENDED_IDENTITIES = 1_000;

/** Told of every role this node wrote, suspended, resumed or deleted (`undefined`: deleted). */
export type RoleChangeListener = (name: string, role: Role | undefined) => void;

/** What to suspend or resume: the role, or one identity under it. */
export interface SuspensionTarget {
  readonly identity?: string;
}

/** Roles (agent types), stored through the barrier so nobody can widen one in the database. */
export class RoleService {
  readonly #storage: Pick<Storage, 'entries' | 'transaction'>;
  readonly #cipher: Cipher;
  /** A role is read on every task login and delegation: opened once per stored version, not decrypted every time. */
  readonly #opened = new OpenedEntryMemo();
  readonly #listeners = new Set<RoleChangeListener>();

  constructor(deps: { storage: Pick<Storage, 'entries' | 'transaction'>; cipher: Cipher }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
  }

  /**
   * Subscribes to this node's role changes (the anomaly engine's view of
   * declared active hours). Other nodes' changes are not announced here:
   * what must hold on every node at once (suspension, policies, labels) is
   * read from storage at each authentication instead.
   */
  onChange(listener: RoleChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(name: string, role: Role | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(name, role);
      } catch {
        // A listener's failure must not fail the write that already happened.
      }
    }
  }

  /**
   * Creates or updates a role. In one transaction with the read of the
   * current record, so a suspension landing meanwhile (an anomaly action on
   * another node) is kept, never overwritten by a write that read the role
   * before it.
   */
  async write(name: string, input: RoleInput): Promise<Role> {
    if (!ROLE_NAME.test(name)) throw new ValidationError('Role names use a-z, 0-9, "_", "." and "-".');
    const activeHours = input.active_hours === undefined ? undefined : validateActiveWindows(input.active_hours);
    const role = await this.#storage.transaction(async ({ entries }) => {
      const existing = await this.#read(entries, name);
      const role = this.#compose(name, input, existing, activeHours);
      await entries.put(ROLES, name, sealJson(this.#cipher, ROLES, name, role));
      return role;
    });
    this.#changed(name, role);
    return role;
  }

  #compose(name: string, input: RoleInput, existing: Role | undefined, activeHours: Role['active_hours']): Role {
    const now = new Date().toISOString();
    const hours = activeHours ?? existing?.active_hours;
    const role: Role = {
      name,
      // A new role is a new incarnation; an update keeps the one it has (a
      // role from an earlier build keeps having none, so its tasks still match).
      ...(existing ? (existing.id ? { id: existing.id } : {}) : { id: newRoleId() }),
      policies: [...new Set(input.policies)].sort(),
      max_ttl_ms: input.max_ttl_ms ?? existing?.max_ttl_ms ?? 15 * 60_000,
      default_ttl_ms: 0,
      auth: [...new Set<AuthMethodKind>(input.auth ?? existing?.auth ?? ['bootstrap'])],
      bound_claims: input.bound_claims ?? existing?.bound_claims ?? {},
      bound_cidrs: input.bound_cidrs ?? existing?.bound_cidrs ?? [],
      max_depth: input.max_depth ?? existing?.max_depth ?? 3,
      require_dpop: input.require_dpop ?? existing?.require_dpop ?? false,
      jwt_methods: input.jwt_methods ?? existing?.jwt_methods ?? [],
      labels: operatorLabels(input.labels ?? existing?.labels ?? {}),
      grantable_labels: grantableLabelKeys(input.grantable_labels ?? existing?.grantable_labels ?? []),
      // An empty list clears the declaration.
      ...(hours && hours.length > 0 ? { active_hours: hours } : {}),
      ...requestSettings(input, existing),
      // A suspension is lifted only by resume: an operator rewriting the role
      // (or a script re-applying its definition) must not undo a quarantine.
      ...(existing?.suspended ? { suspended: existing.suspended } : {}),
      ...(existing?.suspended_identities ? { suspended_identities: existing.suspended_identities } : {}),
      created_time: existing?.created_time ?? now,
      updated_time: now,
    };
    role.default_ttl_ms = Math.min(
      input.default_ttl_ms ?? existing?.default_ttl_ms ?? role.max_ttl_ms,
      role.max_ttl_ms,
    );
    validateRole(role);
    return role;
  }

  /**
   * Suspends the role, or one identity under it. Idempotent: suspending what
   * is suspended keeps the first suspension (who did it, on which finding)
   * and returns `changed: false`. Stored in the sealed role record, so it
   * holds on every node from its next authentication and survives restarts.
   */
  suspend(
    name: string,
    target: SuspensionTarget,
    suspension: RoleSuspension,
  ): Promise<{ role: Role; changed: boolean }> {
    return this.#alter(name, (role) => {
      if (target.identity === undefined) {
        if (role.suspended) return false;
        role.suspended = suspension;
        return true;
      }
      const identities = role.suspended_identities ?? {};
      if (Object.hasOwn(identities, target.identity)) return false;
      if (Object.keys(identities).length >= MAX_SUSPENDED_IDENTITIES) {
        throw new ValidationError(
          `At most ${MAX_SUSPENDED_IDENTITIES} identities per role are suspended: suspend the role.`,
        );
      }
      role.suspended_identities = { ...identities, [target.identity]: suspension };
      return true;
    });
  }

  /** Lifts a suspension of the role or of one identity under it; `changed: false` when there was none. */
  resume(name: string, target: SuspensionTarget): Promise<{ role: Role; changed: boolean }> {
    return this.#alter(name, (role) => {
      if (target.identity === undefined) {
        if (!role.suspended) return false;
        delete role.suspended;
        return true;
      }
      const identities = { ...(role.suspended_identities ?? {}) };
      if (!Object.hasOwn(identities, target.identity)) return false;
      delete identities[target.identity];
      if (Object.keys(identities).length === 0) delete role.suspended_identities;
      else role.suspended_identities = identities;
      return true;
    });
  }

  /** Read, change and write a role in one transaction; nothing is written when `change` says nothing changed. */
  async #alter(name: string, change: (role: Role) => boolean): Promise<{ role: Role; changed: boolean }> {
    if (!ROLE_NAME.test(name)) throw new NotFoundError();
    const result = await this.#storage.transaction(async ({ entries }) => {
      const role = await this.#read(entries, name);
      if (!role) throw new NotFoundError();
      const changed = change(role);
      if (changed) {
        role.updated_time = new Date().toISOString();
        await entries.put(ROLES, name, sealJson(this.#cipher, ROLES, name, role));
      }
      return { role, changed };
    });
    if (result.changed) this.#changed(name, result.role);
    return result;
  }

  /** The stored role inside a transaction (not through the memo: the caller changes it). */
  async #read(entries: EntryStore, name: string): Promise<Role | undefined> {
    const entry = await entries.get(ROLES, name);
    if (!entry) return undefined;
    return withDefaults(await openJson<Role>(this.#cipher, ROLES, name, entry.value));
  }

  async find(name: string): Promise<Role | undefined> {
    if (!ROLE_NAME.test(name)) return undefined;
    const entry = await this.#storage.entries.get(ROLES, name);
    if (!entry) return undefined;
    return withDefaults(await this.#opened.openJson<Role>(this.#cipher, ROLES, name, entry.value));
  }

  async read(name: string): Promise<Role> {
    const role = await this.find(name);
    if (!role) throw new NotFoundError();
    return role;
  }

  list(): Promise<string[]> {
    return this.#storage.entries.list(ROLES, '', { limit: 10_000 });
  }

  /**
   * Deletes a role and returns what it was. Its tasks stop working at once
   * (their role incarnation is gone, see task-standing.ts); the caller ends
   * them with TaskService.revokeRoleTasks.
   */
  async delete(name: string): Promise<Role> {
    const role = await this.find(name);
    if (!role || !(await this.#storage.entries.delete(ROLES, name))) throw new NotFoundError();
    this.#changed(name, undefined);
    return role;
  }
}

/** Roles stored by earlier builds have no labels, and let nothing be granted. */
function withDefaults(role: Role): Role {
  if (role.labels === undefined) role.labels = {};
  if (role.grantable_labels === undefined) role.grantable_labels = [];
  return role;
}

const newRoleId = () => `rol_${randomBytes(16).toString('base64url')}`;

function validateRole(role: Role): void {
  for (const p of role.policies) if (!isPolicyName(p)) throw new ValidationError('A policy name is invalid.');
  if (!Number.isInteger(role.max_ttl_ms) || role.max_ttl_ms <= 0 || role.max_ttl_ms > MAX_TASK_TTL_MS) {
    throw new ValidationError('max_ttl is between 1s and 24h.');
  }
  if (role.auth.length === 0 || role.auth.some((a) => !AUTH_KINDS.includes(a))) {
    throw new ValidationError('auth is a list of bootstrap, jwt, cert, aws.');
  }
  if (!Number.isInteger(role.max_depth) || role.max_depth < 0 || role.max_depth > MAX_DELEGATION_DEPTH) {
    throw new ValidationError(`max_depth is 0 to ${MAX_DELEGATION_DEPTH}.`);
  }
  for (const cidr of role.bound_cidrs) parseCidr(cidr);
  // A platform's identity tokens are issued to every workload on it (every
  // repository of a CI provider, every pod of a cluster): a role open to JWT
  // logins must say which of them it is for.
  if (role.auth.includes('jwt') && Object.keys(role.bound_claims).length === 0) {
    throw new ValidationError('A role that allows jwt logins needs bound_claims (e.g. sub, repository, namespace).');
  }
  // Whoever may write a JWT method (its issuer, keys, claim mapping) decides
  // who logs in through it: a role open to "any method" would be open to
  // every operator who may write any method. The role's writer names them.
  if (role.auth.includes('jwt') && role.jwt_methods.length === 0) {
    throw new ValidationError('A role that allows jwt logins names its JWT methods (jwt_methods).');
  }
  for (const m of role.jwt_methods) {
    if (typeof m !== 'string' || !ROLE_NAME.test(m)) throw new ValidationError('A JWT method name is invalid.');
  }
  for (const [claim, values] of Object.entries(role.bound_claims)) {
    if (!claim || !Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== 'string')) {
      throw new ValidationError('bound_claims maps a claim to a list of values.');
    }
  }
}

/** Parses `10.0.0.0/8` or `::1/128` (validation only; matching uses node's BlockList). */
export function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', bits = ''] = cidr.split('/');
  const version = isIP(address);
  const prefix = Number(bits);
  if (version === 0 || !/^\d{1,3}$/.test(bits) || prefix > (version === 4 ? 32 : 128)) {
    throw new ValidationError(`Not a CIDR: ${cidr.slice(0, 64)}`);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * The role's just-in-time request settings: kept from the existing role
 * unless given; `request_scope: ''` clears the ceiling (its tasks may then
 * request nothing). The ceiling is parsed here so a bad one is refused
 * before anything is written.
 */
function requestSettings(
  input: RoleInput,
  existing: Role | undefined,
): Pick<Role, 'request_scope' | 'approvers' | 'approvals'> {
  const scope = input.request_scope ?? existing?.request_scope;
  const approvers = [...new Set(input.approvers ?? existing?.approvers ?? [])].sort();
  const approvals = input.approvals ?? existing?.approvals ?? 1;
  if (!Number.isInteger(approvals) || approvals < 1 || approvals > 10) {
    throw new ValidationError('approvals is an integer from 1 to 10.');
  }
  if (approvers.length > 32) throw new ValidationError('At most 32 approver policies.');
  if (!approvers.every(isPolicyName)) throw new ValidationError('approvers are policy names.');
  return {
    ...(scope ? { request_scope: formatScope(parseScope(scope)) } : {}),
    ...(approvers.length > 0 ? { approvers } : {}),
    ...(approvals !== 1 ? { approvals } : {}),
  };
}
