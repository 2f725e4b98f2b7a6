import { CustosError } from '../errors/index.js';
import { type PolicyJson, policySetTextToParts, policyToJson, validate } from './cedar-runtime.js';
import { CUSTOS_CEDAR_SCHEMA } from './custos-schema.js';
import { isPolicyAction, type PolicyAction } from './policy-action.js';
import { describeCedarErrors } from './policy-diagnostics.js';
import { assertPolicyName } from './policy-name.js';
import { type RequestNeeds, statementNeeds } from './statement-needs.js';

/** The largest policy document accepted, in UTF-16 code units. */
export const MAX_POLICY_TEXT = 64 * 1024;

/** One `permit`/`forbid` statement of a policy document, analysed once. */
export interface PolicyStatement {
  /** `NAME#N`, N the 0-based position of the statement in the document. */
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  /** The statement's Cedar text, as Cedar split it from the document. */
  readonly text: string;
  /** The actions its scope admits; `'all'` for an unconstrained action. */
  readonly actions: ReadonlySet<PolicyAction> | 'all';
  /** What of a request it can observe. */
  readonly needs: RequestNeeds;
}

/** A validated, split and analysed policy document. */
export interface PolicyDocument {
  readonly name: string;
  readonly text: string;
  readonly statements: readonly PolicyStatement[];
  /** Validator warnings (e.g. "policy is impossible"), short. */
  readonly warnings: readonly string[];
}

function invalid(detail: string): CustosError {
  return new CustosError('CUSTOS_ERR_INVALID_POLICY', detail);
}

/**
 * Parses `text`, validates it in strict mode against {@link CUSTOS_CEDAR_SCHEMA}
 * and splits it into statements. Throws CUSTOS_ERR_VALIDATION for a bad name
 * and CUSTOS_ERR_INVALID_POLICY with a short, positioned detail otherwise.
 */
export function compilePolicyDocument(name: string, text: string): PolicyDocument {
  assertPolicyName(name);
  if (text.length > MAX_POLICY_TEXT) throw invalid(`larger than ${MAX_POLICY_TEXT} characters`);

  const answer = validate({
    schema: CUSTOS_CEDAR_SCHEMA,
    policies: { staticPolicies: text },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') throw invalid(describeCedarErrors(text, answer.errors));
  if (answer.validationErrors.length > 0) {
    throw invalid(
      describeCedarErrors(
        text,
        answer.validationErrors.map((e) => e.error),
      ),
    );
  }
  const warnings = answer.validationWarnings.map((w) => describeCedarErrors(text, [w.error]));

  const parts = policySetTextToParts(text);
  if (parts.type === 'failure') throw invalid(describeCedarErrors(text, parts.errors));
  if (parts.policy_templates.length > 0) throw invalid('templates (?principal, ?resource) are not supported');
  if (parts.policies.length === 0) throw invalid('no permit or forbid statement');

  const statements = inSourceOrder(parts.policies).map((stmt, i) => analyse(`${name}#${i}`, stmt));
  return { name, text, statements, warnings };
}

// Cedar names the statements of a text `policy0`, `policy1`, … in source
// order and returns them sorted by that id *as a string* (policy0, policy1,
// policy10, policy11, policy2, …). Undo that sort so `NAME#N` is the N-th
// statement as the author wrote it (pinned by a test with 12 statements).
function inSourceOrder(sorted: readonly string[]): string[] {
  const ids = sorted.map((_, i) => `policy${i}`).sort();
  const out = new Array<string>(sorted.length);
  ids.forEach((id, k) => {
    out[Number(id.slice('policy'.length))] = sorted[k] as string;
  });
  return out;
}

function analyse(id: string, text: string): PolicyStatement {
  const json = policyToJson(text);
  if (json.type === 'failure') throw invalid(describeCedarErrors(text, json.errors));
  const p = json.json;
  return { id, effect: p.effect, text, actions: scopeActions(p.action), needs: statementNeeds(p) };
}

function scopeActions(c: PolicyJson['action']): ReadonlySet<PolicyAction> | 'all' {
  if (c.op === 'All') return 'all';
  const uids = c.op === '==' ? ('entity' in c ? [c.entity] : []) : 'entity' in c ? [c.entity] : c.entities;
  const actions = new Set<PolicyAction>();
  for (const uid of uids) {
    const { type, id } = '__entity' in uid ? uid.__entity : uid;
    // The validator has already rejected actions outside the schema.
    if (type === 'Custos::Action' && isPolicyAction(id)) actions.add(id);
  }
  return actions;
}
