import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { type Cipher, sealJson } from '../common/cipher.js';
import { OpenedEntryMemo } from '../common/opened-entry-memo.js';
import { NotFoundError, ValidationError } from '../errors/index.js';
import { isPolicyName } from '../policy/index.js';
import type { Storage } from '../ports/storage.js';
import type { AuthMethodKind, Role, RoleInput } from './role-types.js';
import { grantableLabelKeys, operatorLabels } from './task-labels.js';

const ROLES = 'role';
const ROLE_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const AUTH_KINDS: readonly AuthMethodKind[] = ['bootstrap', 'jwt', 'cert'];
/** No task lives longer than a day: tasks are minutes of work, not identities. */
export const MAX_TASK_TTL_MS = 24 * 3_600_000;
export const MAX_DELEGATION_DEPTH = 16;

/** Roles (agent types), stored through the barrier so nobody can widen one in the database. */
export class RoleService {
  readonly #storage: Pick<Storage, 'entries'>;
  readonly #cipher: Cipher;
  /** A role is read on every task login and delegation: opened once per stored version, not decrypted every time. */
  readonly #opened = new OpenedEntryMemo();

  constructor(deps: { storage: Pick<Storage, 'entries'>; cipher: Cipher }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
  }

  async write(name: string, input: RoleInput): Promise<Role> {
    if (!ROLE_NAME.test(name)) throw new ValidationError('Role names use a-z, 0-9, "_", "." and "-".');
    const existing = await this.find(name);
    const now = new Date().toISOString();
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
      created_time: existing?.created_time ?? now,
      updated_time: now,
    };
    role.default_ttl_ms = Math.min(
      input.default_ttl_ms ?? existing?.default_ttl_ms ?? role.max_ttl_ms,
      role.max_ttl_ms,
    );
    validateRole(role);
    await this.#storage.entries.put(ROLES, name, sealJson(this.#cipher, ROLES, name, role));
    return role;
  }

  async find(name: string): Promise<Role | undefined> {
    if (!ROLE_NAME.test(name)) return undefined;
    const entry = await this.#storage.entries.get(ROLES, name);
    if (!entry) return undefined;
    const role = await this.#opened.openJson<Role>(this.#cipher, ROLES, name, entry.value);
    // Roles stored by earlier builds have no labels, and let nothing be granted.
    if (role.labels === undefined) role.labels = {};
    if (role.grantable_labels === undefined) role.grantable_labels = [];
    return role;
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
    return role;
  }
}

const newRoleId = () => `rol_${randomBytes(16).toString('base64url')}`;

function validateRole(role: Role): void {
  for (const p of role.policies) if (!isPolicyName(p)) throw new ValidationError('A policy name is invalid.');
  if (!Number.isInteger(role.max_ttl_ms) || role.max_ttl_ms <= 0 || role.max_ttl_ms > MAX_TASK_TTL_MS) {
    throw new ValidationError('max_ttl is between 1s and 24h.');
  }
  if (role.auth.length === 0 || role.auth.some((a) => !AUTH_KINDS.includes(a))) {
    throw new ValidationError('auth is a list of bootstrap, jwt, cert.');
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
