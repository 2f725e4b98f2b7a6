import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { evidenceOf, setBounded, subjectOf } from '../rule-support.js';

/** What may be tuned per role (`roles` in {@link DelegationShapeConfig}). */
export interface DelegationShapeRoleConfig {
  /** Never fire for this role (its trees have no fixed shape). */
  readonly disabled?: boolean;
  readonly minDelegations?: number;
  readonly depthMargin?: number;
  readonly widthFactor?: number;
  readonly minWidth?: number;
}

export interface DelegationShapeConfig {
  readonly severity: FindingSeverity;
  /** A role is judged only once its tasks delegated this many times (default 50)… */
  readonly minDelegations: number;
  /** …over at least this long (ms, default 24 h: a day's trees, not one run's). */
  readonly minHistoryMs: number;
  /** Deeper is more than the deepest child the role ever made plus this (default 0: any level deeper). */
  readonly depthMargin: number;
  /** Wider is more children of one task than this × the widest the role ever made (default 2)… */
  readonly widthFactor: number;
  /** …and at least this many children (default 8): one more child of a narrow tree is not an incident. */
  readonly minWidth: number;
  /** Roles remembered at most (default 10,000). */
  readonly maxRoles: number;
  /** Parent tasks whose children are counted at most (default 100,000; the oldest goes first). */
  readonly maxParents: number;
  /** Per-role overrides by role name. */
  readonly roles: { readonly [role: string]: DelegationShapeRoleConfig };
}

export const DELEGATION_SHAPE_DEFAULTS: DelegationShapeConfig = {
  severity: 'medium',
  minDelegations: 50,
  minHistoryMs: 86_400_000,
  depthMargin: 0,
  widthFactor: 2,
  minWidth: 8,
  maxRoles: 10_000,
  maxParents: 100_000,
  roles: {},
};

interface RoleShape {
  readonly first: number;
  delegations: number;
  /** The deepest child seen (a root task is depth 0, its children 1). */
  maxDepth: number;
  /** The most children one task of the role made. */
  maxWidth: number;
}

interface ParentCount {
  children: number;
  /**
   * The role's widest fan-out when this parent made its first child: what it
   * is judged against. Not the live maximum, which this parent's own growing
   * count would raise child by child, so that it never looked wide.
   */
  readonly widest: number;
  /** A wide finding was raised for this parent already: one per tree, not one per further child. */
  reported: boolean;
}

/**
 * `delegation-shape`: a task delegates deeper (a longer chain of
 * sub-agents) or wider (more children of one task) than any tree its role
 * made before. An agent type's trees have a shape — a coordinator fans out
 * to five workers that do not delegate further — and a prompt-injected or
 * looping agent breaks it: recursion that builds a chain of ever-narrower
 * children, or a fan-out that mints hundreds of tokens to spread work (or
 * credentials) around.
 *
 * Read from the delegation's own audit record: the outcome of
 * `POST /v1/tasks/delegate` or `POST /v1/oauth/token` served (status below
 * 400) with `details.issued_task`, whose `auth` is the parent task — its
 * `task_chain` (root to parent, from the verified token's `act` chain, not
 * from anything the caller wrote) gives the child's depth, its `task_id`
 * the parent whose children are counted. Logins and operator starts also
 * name an issued task, but an operator start has no task caller and a
 * login's record names the new task as its own caller: not delegations.
 *
 * Per role the deepest child and the widest fan-out are learned; once the
 * role has `minDelegations` over `minHistoryMs`, a child deeper than the
 * deepest plus `depthMargin`, or a parent's child count above
 * `widthFactor` × the widest (and at least `minWidth`), raises a finding —
 * once per parent for width, judged against the widest fan-out the role
 * had when that parent began (else its own children, counted one by one,
 * would raise the bar as they go). Then it is learned: a role whose trees really
 * grew fires once per change. A role that never delegated is not judged
 * (no history): `max_depth` on the role is the control for that. Per event:
 * two map lookups.
 */
export class DelegationShapeRule implements AnomalyRule {
  readonly name = 'delegation-shape';
  readonly description = "A task delegating deeper or wider than its role's delegation trees ever did";
  readonly config: DelegationShapeConfig;
  readonly #roles = new Map<string, RoleShape>();
  readonly #parents = new Map<string, ParentCount>();

  constructor(config: Partial<DelegationShapeConfig> = {}) {
    this.config = { ...DELEGATION_SHAPE_DEFAULTS, ...config };
    if (!(this.config.widthFactor >= 1)) throw new RangeError('delegation-shape widthFactor must be at least 1');
    if (!(this.config.depthMargin >= 0)) throw new RangeError('delegation-shape depthMargin must be 0 or more');
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request' || event.details?.phase !== 'response') return undefined;
    if (typeof event.details.issued_task !== 'string' || event.status >= 400) return undefined;
    const auth = event.auth;
    const parent = auth.task_id;
    const role = auth.role;
    const chain = auth.task_chain;
    // A delegation is a task issuing another task. An operator start has no task caller; a login's outcome
    // record carries the new task itself as its caller (issued_task is auth.task_id): neither is a delegation.
    if (parent === undefined || role === undefined || chain === undefined || chain.length === 0) return undefined;
    if (event.details.issued_task === parent) return undefined;
    const tuning = Object.hasOwn(this.config.roles, role) ? this.config.roles[role] : undefined;
    if (tuning?.disabled) return undefined;

    const depth = chain.length;
    let shape = this.#roles.get(role);
    if (!shape) {
      shape = { first: epochMs, delegations: 0, maxDepth: 0, maxWidth: 0 };
      setBounded(this.#roles, role, shape, this.config.maxRoles);
    }
    let counted = this.#parents.get(parent);
    if (!counted) {
      counted = { children: 0, widest: shape.maxWidth, reported: false };
      setBounded(this.#parents, parent, counted, this.config.maxParents);
    }
    counted.children++;
    const width = counted.children;
    const judged =
      shape.delegations >= (tuning?.minDelegations ?? this.config.minDelegations) &&
      epochMs - shape.first >= this.config.minHistoryMs;
    const margin = tuning?.depthMargin ?? this.config.depthMargin;
    const factor = tuning?.widthFactor ?? this.config.widthFactor;
    const minWidth = tuning?.minWidth ?? this.config.minWidth;
    const deeper = judged && depth > shape.maxDepth + margin;
    const wider = judged && !counted.reported && width >= minWidth && width > counted.widest * factor;
    const before = { depth: shape.maxDepth, width: counted.widest, delegations: shape.delegations };
    shape.delegations++;
    if (depth > shape.maxDepth) shape.maxDepth = depth;
    if (width > shape.maxWidth) shape.maxWidth = width;
    if (!deeper && !wider) return undefined;
    if (wider) counted.reported = true;

    const what = [
      deeper ? `a child at depth ${depth} (its deepest before: ${before.depth})` : undefined,
      wider ? `a ${width}th child of one task (its widest fan-out before: ${before.width})` : undefined,
    ]
      .filter((s) => s !== undefined)
      .join(' and ');
    return {
      severity: this.config.severity,
      subject: subjectOf(event),
      evidence: [evidenceOf(observation)],
      explanation:
        `A task of role ${role} delegated ${what}, beyond every delegation tree the role made in its ` +
        `${before.delegations} delegations seen. Agent types keep the shape of their trees; a chain that keeps ` +
        'growing is an agent delegating to itself in a loop (or being steered to), and a fan-out far wider than ' +
        'usual mints tokens to spread work or credentials around. Look at the task tree (`custos task tree`) ' +
        'and revoke it if it is not expected. If the role now delegates this way by design, acknowledge: the new ' +
        'shape is learned.',
    };
  }
}
