import type { ElevationIndex } from '../access-requests/elevation-index.js';
import { UnauthenticatedError } from '../errors/index.js';
import {
  actChain,
  TaskInactiveError,
  type TaskSigningKeys,
  VerifiedTaskTokenCache,
  verifyTaskToken,
} from '../task-tokens/index.js';
import {
  assertRoleAdmits,
  currentTaskLabels,
  isTaskOfRole,
  type RoleService,
  type TaskService,
  type TaskTokenSubject,
  trustedLabels,
} from '../tasks/index.js';
import type { TokenService } from '../tokens/index.js';
import type { Principal } from './principal.js';

export interface AuthenticateContext {
  method: string;
  url: string;
  /** The `DPoP` header, when the client sent one. */
  dpop?: string;
  /**
   * Introspection only: accept a DPoP-bound token without a proof, because
   * the resource server asking checks the proof itself against `cnf.jkt`.
   */
  allowUnproven?: boolean;
  /**
   * Introspection only: audiences accepted besides custos's own (the
   * registered resources' URLs), so a resource server can ask about a token
   * minted for it. Every other caller leaves it out: a token for a resource
   * is never a credential at custos.
   */
  alsoAudiences?: readonly string[];
}

export type DpopVerifier = (
  proof: string,
  context: { method: string; url: string; accessToken: string },
) => Promise<string>;

/**
 * Turns a bearer credential into a principal: an operator token (`cus_…`)
 * or a task token (an EdDSA JWT). A task token is accepted only while the
 * task and every ancestor are live, so revoking any task refuses the whole
 * subtree's tokens from the next request on.
 */
export class PrincipalAuthenticator {
  readonly #tokens: TokenService;
  readonly #tasks: TaskService;
  readonly #roles: RoleService;
  readonly #keys: TaskSigningKeys;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #dpop: DpopVerifier | undefined;
  readonly #elevations: Pick<ElevationIndex, 'forChain'> | undefined;
  /** Signature checks of tokens seen before are skipped (Ed25519 verify is the dominant cost); revocation is still checked every time. */
  readonly #verified = new VerifiedTaskTokenCache();

  constructor(deps: {
    tokens: TokenService;
    tasks: TaskService;
    roles: RoleService;
    keys: TaskSigningKeys;
    issuer: string;
    audience: string;
    dpop?: DpopVerifier;
    /** Just-in-time elevations (docs/jit.md): looked up for every task, like its end markers. */
    elevations?: Pick<ElevationIndex, 'forChain'>;
  }) {
    this.#tokens = deps.tokens;
    this.#tasks = deps.tasks;
    this.#roles = deps.roles;
    this.#keys = deps.keys;
    this.#issuer = deps.issuer;
    this.#audience = deps.audience;
    this.#dpop = deps.dpop;
    this.#elevations = deps.elevations;
  }

  async authenticate(credential: string, context: AuthenticateContext): Promise<Principal> {
    if (credential.startsWith('cus_')) return { kind: 'operator', token: await this.#tokens.authenticate(credential) };
    return this.authenticateTask(credential, context);
  }

  /** A task token only (the token exchange's subject token): verified, live, and its role still there. */
  async authenticateTask(token: string, context: AuthenticateContext): Promise<Principal & { kind: 'task' }> {
    const task = await this.verifyTaskToken(token, context);
    const role = await this.#roles.find(task.role);
    // A deleted role takes its tasks with it.
    if (!role) throw new UnauthenticatedError();
    // Labels live on the task's record, not in its token (they may be long, and a token is sent with every request).
    const record = await this.#tasks.record(task.task_id).catch(() => undefined);
    if (!record) throw new UnauthenticatedError();
    // …and a role deleted and created again is not the role the task was
    // started for: its tasks stay dead (the incarnation is in the record).
    if (!isTaskOfRole(record, role)) throw new UnauthenticatedError();
    // A suspended role or identity: its live tasks are refused too (see assertRoleAdmits).
    assertRoleAdmits(role, record.sub);
    // Labels its agent chose under an earlier build are not shown to policies as if an operator had set them.
    const recorded = trustedLabels(record);
    if (!recorded) throw new UnauthenticatedError();
    // The role's current labels, over what the task recorded: an operator's
    // change to them (a `quarantine=true` a forbid relies on) holds from the
    // task's next request, not from its next start.
    const labels = currentTaskLabels(recorded, record, role);
    // Elevations are found here, server-side at every use — as the end
    // markers are — so a token minted before an approval carries it, and one
    // minted before a revocation loses it, without being re-issued. A map
    // lookup per chain level; storage is read only for a task that holds one.
    const elevations = this.#elevations ? await this.#elevations.forChain(task.chain) : [];
    return { kind: 'task', task, role, labels, ...(elevations.length > 0 ? { elevations } : {}) };
  }

  /** Verifies a task token (signature, claims, DPoP binding) and that its whole chain is live. */
  async verifyTaskToken(token: string, context: AuthenticateContext): Promise<TaskTokenSubject> {
    const audience = context.alsoAudiences?.length ? [this.#audience, ...context.alsoAudiences] : this.#audience;
    const options = { keys: this.#keys, issuer: this.#issuer, audience, cache: this.#verified };
    // The token is verified before its DPoP proof: checking a proof records
    // its jti in storage (single use on every node), and a proof is made
    // with any key pair at all — so only a caller holding a valid task token
    // may make custos write anything. The first check costs no storage.
    let claims = await verifyTaskToken(token, { ...options, ignoreDpopBinding: true });
    if (!context.allowUnproven && (context.dpop !== undefined || claims.cnf !== undefined)) {
      let dpopJkt: string | undefined;
      if (context.dpop !== undefined) {
        if (!this.#dpop) throw new UnauthenticatedError();
        dpopJkt = await this.#dpop(context.dpop, { method: context.method, url: context.url, accessToken: token });
      }
      // Again with the binding checked (the signature check is cached).
      claims = await verifyTaskToken(token, { ...options, ...(dpopJkt ? { dpopJkt } : {}) });
    }
    const chain = actChain(claims);
    const status = await this.#tasks.isActive(chain);
    if (!status.active) {
      // A genuine token of a task that is over: the audit event says so and names the task (see TaskInactiveError).
      const state = status.state === 'active' ? 'ended' : status.state;
      throw new TaskInactiveError(state, { task_id: claims.task_id, identity: claims.sub, role: claims.role });
    }
    return {
      sub: claims.sub,
      task_id: claims.task_id,
      parent_task_id: claims.parent_task_id,
      scope: claims.scope,
      depth: claims.depth,
      role: claims.role,
      chain,
      act: claims.act ? (claims.act as TaskTokenSubject['act']) : null,
      exp: claims.exp,
      jkt: claims.cnf?.jkt ?? null,
      aud: claims.aud,
    };
  }
}
