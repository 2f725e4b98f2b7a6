import { CustosError, ValidationError } from '../errors/index.js';

/**
 * A task's labels: `key=value` pairs Cedar sees as `principal.labels`, a set
 * of `"key=value"` strings.
 *
 * **Who sets a label decides whether a policy may trust it.** Labels come in
 * two namespaces, told apart by the key alone:
 *
 * - *Operator labels* (any key not starting with `agent.`): set only by
 *   operators — on the role (`role write --label`), on a bootstrap token
 *   (`bootstrap create --label`), by a JWT method's claim mapping (a claim
 *   the issuer vouches for becomes a label), or on a task an operator starts.
 *   These are what policies rely on (`principal.labels.contains("team=search")`).
 * - *Agent labels* (`agent.…`): chosen by the agent itself, at login or when
 *   delegating. Useful for observability (`agent.step=fetch`); no policy
 *   should trust them, and none can mistake one for an operator label, since
 *   every agent label's string starts with `agent.`.
 *
 * Below the root task labels only grow: a child inherits every label exactly
 * and may add agent labels under keys its parent does not have. So a `permit`
 * on a label cannot be gained by delegating, and a `forbid`/`unless` on one
 * cannot be escaped (Kubernetes' node-restriction labels, SPIFFE's
 * registration-assigned selectors and Vault's operator-set entity metadata
 * draw the same line between what a workload may say about itself and what
 * is said about it).
 */
export type Labels = Record<string, string>;

/** The key prefix of labels an agent chooses itself. */
export const AGENT_LABEL_PREFIX = 'agent.';
/** At most this many labels on a task, all sources together. */
export const MAX_LABELS = 32;
const KEY = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
const MAX_VALUE = 256;

/** Whether a key is in the agent namespace (case-insensitively: `Agent.x` is not an operator label either). */
export const isAgentLabel = (key: string): boolean => key.toLowerCase().startsWith(AGENT_LABEL_PREFIX);

/** Checks keys, values and count; returns a plain copy. Throws {@link ValidationError}. */
export function validateLabels(labels: unknown): Labels {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== 'object' || Array.isArray(labels)) throw new ValidationError('Labels are key=value pairs.');
  const out: Labels = {};
  for (const [key, value] of Object.entries(labels)) {
    if (!KEY.test(key) || typeof value !== 'string' || value.length > MAX_VALUE) {
      throw new ValidationError('Labels are key=value with short keys (a-z, 0-9, "_", ".", "-") and values.');
    }
    out[key] = value;
  }
  if (Object.keys(out).length > MAX_LABELS) throw new ValidationError(`At most ${MAX_LABELS} labels.`);
  return out;
}

/**
 * Labels an operator configures on a role, a bootstrap token or a claim
 * mapping: operator labels only. An `agent.` key there is a mistake (it
 * would look agent-chosen to every policy author), refused as a validation
 * error.
 */
export function operatorLabels(labels: unknown): Labels {
  const out = validateLabels(labels);
  if (Object.keys(out).some(isAgentLabel)) {
    throw new ValidationError(`Operator labels cannot use the "${AGENT_LABEL_PREFIX}" prefix, kept for agents.`);
  }
  return out;
}

/**
 * Labels an agent asks for (login or delegation body): agent labels only.
 * Anything else is `CUSTOS_ERR_LABEL_NOT_ALLOWED`: the agent is asking for
 * an attribute only an operator may give.
 */
export function agentLabels(labels: unknown): Labels {
  const out = validateLabels(labels);
  if (Object.keys(out).some((key) => !isAgentLabel(key))) {
    throw new CustosError(
      'CUSTOS_ERR_LABEL_NOT_ALLOWED',
      `An agent sets only "${AGENT_LABEL_PREFIX}…" labels; others come from its role, bootstrap token or JWT claims.`,
    );
  }
  return out;
}

/**
 * Label keys a role lets others grant (`grantable_labels`): operator label
 * keys, each once, sorted. Throws {@link ValidationError}.
 */
export function grantableLabelKeys(keys: unknown): string[] {
  if (keys === undefined || keys === null) return [];
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
    throw new ValidationError('grantable_labels is a list of label keys.');
  }
  const unique = [...new Set(keys as string[])].sort();
  // Same rules as the labels themselves (checked with a placeholder value).
  operatorLabels(Object.fromEntries(unique.map((k) => [k, ''])));
  return unique;
}

type GrantingRole = Readonly<{ labels: Readonly<Labels>; grantable_labels?: readonly string[] }>;

/**
 * Why a role does not allow `labels` to be granted below it (by a bootstrap
 * token, an operator start or a JWT claim mapping), or `undefined` when it
 * does: a key the role sets itself may only repeat its value (a role's labels
 * hold for every task of it), and any other key must be one the role lists in
 * `grantable_labels`. Whoever may issue for a role (`issue`) or write a JWT
 * method its logins use is not thereby trusted with every label a policy
 * might read: the role's writer decides which keys they may set.
 */
export function labelGrantRefusal(role: GrantingRole, labels: Readonly<Labels>): string | undefined {
  const grantable = role.grantable_labels ?? [];
  for (const [key, value] of Object.entries(labels)) {
    if (Object.hasOwn(role.labels, key)) {
      if (role.labels[key] !== value) return `The role sets the label "${key}".`;
    } else if (!grantable.includes(key)) {
      return `The role does not let the label "${key}" be granted (see its grantable_labels).`;
    }
  }
  return undefined;
}

/** Throws `CUSTOS_ERR_LABEL_NOT_ALLOWED` where {@link labelGrantRefusal} finds a reason. */
export function assertGrantable(role: GrantingRole, labels: Readonly<Labels>): void {
  const refusal = labelGrantRefusal(role, labels);
  if (refusal) throw new CustosError('CUSTOS_ERR_LABEL_NOT_ALLOWED', refusal);
}

/**
 * A root task's labels: the operator-granted ones (bootstrap token, claim
 * mapping or operator start), the agent's own, and the role's, which win
 * over any other source (a claim mapping cannot override the role).
 */
export function rootTaskLabels(sources: {
  role: Readonly<Labels>;
  granted?: Readonly<Labels> | undefined;
  agent?: Readonly<Labels> | undefined;
}): Labels {
  return countChecked({ ...sources.granted, ...sources.agent, ...sources.role });
}

/**
 * A delegated child's labels: its parent's, unchanged, plus new agent labels.
 * Changing an inherited label, or setting an operator one, is
 * `CUSTOS_ERR_LABEL_NOT_ALLOWED`; repeating one with its value is harmless.
 */
export function childTaskLabels(parent: Readonly<Labels>, requested: unknown): Labels {
  const added = agentLabels(requested);
  for (const [key, value] of Object.entries(added)) {
    if (Object.hasOwn(parent, key) && parent[key] !== value) {
      throw new CustosError('CUSTOS_ERR_LABEL_NOT_ALLOWED', `The label "${key}" is inherited and cannot change.`);
    }
  }
  return countChecked({ ...parent, ...added });
}

function countChecked(labels: Labels): Labels {
  if (Object.keys(labels).length > MAX_LABELS) throw new ValidationError(`At most ${MAX_LABELS} labels.`);
  return labels;
}
