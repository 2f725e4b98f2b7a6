import { CustosError } from '../errors/index.js';
import {
  CedarRuntimeFault,
  type EntityUidJson,
  type PolicyJson,
  policySetTextToParts,
  policyToJson,
  validate,
} from './cedar-runtime.js';
import { CUSTOS_CEDAR_SCHEMA } from './custos-schema.js';
import { isPolicyAction, type PolicyAction } from './policy-action.js';
import { describeCedarErrors } from './policy-diagnostics.js';
import { assertPolicyName } from './policy-name.js';
import { POLICY_TEXT_LIMITS, type PolicyTextLimits, scanPolicyText } from './policy-text-bounds.js';
import { retiredAttributeIn } from './retired-attributes.js';
import { type RequestNeeds, statementNeeds } from './statement-needs.js';

/**
 * Deepest JSON form of a statement handed to Cedar as JSON. Cedar's bindings
 * read JSON with serde_json, which refuses nesting beyond 128 levels (the
 * statement sits 3 levels down in the call); a deeper statement — a long
 * `||` chain nests two levels per operator — is handed over as text instead.
 */
const MAX_JSON_DEPTH = 100;

/** One `permit`/`forbid` statement of a policy document, analysed once. */
export interface PolicyStatement {
  /** `NAME#N`, N the 0-based position of the statement in the document. */
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  /** The statement's Cedar text, as Cedar split it from the document. */
  readonly text: string;
  /** Which resources its scope admits, checked in JS per request. */
  readonly resource: ResourceScope;
  /**
   * The statement as handed to Cedar: normally its JSON form with the
   * resource scope removed. It is only ever evaluated for requests whose path
   * {@link resourceScopeMatches} already admitted, so the two are equivalent
   * there — and Cedar then needs neither the resource entity nor its
   * ancestors unless the conditions read them. A statement keeps its text
   * (and scope) when its JSON form would not survive the trip: an integer
   * literal beyond JavaScript's safe range, or nesting deeper than Cedar's
   * JSON reader accepts.
   */
  readonly cedar: PolicyJson | string;
  /** The actions its scope admits; `'all'` for an unconstrained action. */
  readonly actions: ReadonlySet<PolicyAction> | 'all';
  /** What of a request it can observe. */
  readonly needs: RequestNeeds;
}

/**
 * A statement's resource scope: any resource, one path, or a path and
 * everything below it (Cedar's reflexive `in`). `never` for a scope that
 * names a type other than `Custos::Path` (the validator rejects those).
 */
export type ResourceScope =
  | { kind: 'all' }
  | { kind: 'eq'; path: string }
  | { kind: 'in'; path: string }
  | { kind: 'never' };

/**
 * Whether `scope` admits `path`, whose folder prefixes are `ancestors`. The
 * resource entity custos builds has exactly those parents, so this is what
 * Cedar would compute for the scope.
 */
export function resourceScopeMatches(scope: ResourceScope, path: string, ancestors: readonly string[]): boolean {
  switch (scope.kind) {
    case 'all':
      return true;
    case 'eq':
      return scope.path === path;
    case 'in':
      return scope.path === path || ancestors.includes(scope.path);
    case 'never':
      return false;
  }
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
 * Checks `text` against `limits` ({@link scanPolicyText}), then parses it,
 * validates it in strict mode against {@link CUSTOS_CEDAR_SCHEMA} and splits
 * it into statements. Throws CUSTOS_ERR_VALIDATION for a bad name and
 * CUSTOS_ERR_INVALID_POLICY with a short, positioned detail otherwise —
 * including when Cedar itself fails on the text (the runtime is then rebuilt,
 * see cedar-runtime.ts).
 */
export function compilePolicyDocument(
  name: string,
  text: string,
  limits: PolicyTextLimits = POLICY_TEXT_LIMITS,
): PolicyDocument {
  assertPolicyName(name);
  // Before any Cedar call: what Cedar cannot survive must never reach it.
  scanPolicyText(text, limits);
  try {
    return compile(name, text);
  } catch (e) {
    if (e instanceof CedarRuntimeFault) throw invalid('the policy engine failed on this policy; simplify it');
    throw e;
  }
}

function compile(name: string, text: string): PolicyDocument {
  const answer = validate({
    schema: CUSTOS_CEDAR_SCHEMA,
    policies: { staticPolicies: text },
    validationSettings: { mode: 'strict' },
  });
  // Whatever the validator said: its "attribute not found" would not say
  // why, and a `has` test of a retired attribute validates but never holds.
  const retired = retiredAttributeIn(text);
  if (retired) throw invalid(retired);
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
  const resource = resourceScope(p.resource);
  const needs = statementNeeds(p);
  const exact = !hasUnsafeInteger(p) && jsonDepth(p) <= MAX_JSON_DEPTH;
  if (!exact && resource.kind === 'in') needs.resource.parents = true;
  return {
    id,
    effect: p.effect,
    text,
    actions: scopeActions(p.action),
    resource,
    cedar: exact ? { ...p, resource: { op: 'All' } } : text,
    needs,
  };
}

/** Nesting of objects and arrays in `value` (recursion bounded by the text bounds). */
function jsonDepth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let deepest = 0;
  for (const v of Array.isArray(value) ? value : Object.values(value)) deepest = Math.max(deepest, jsonDepth(v));
  return deepest + 1;
}

function hasUnsafeInteger(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isSafeInteger(value);
  if (Array.isArray(value)) return value.some(hasUnsafeInteger);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasUnsafeInteger);
  return false;
}

const PATH_TYPE = 'Custos::Path';

function resourceScope(c: PolicyJson['resource']): ResourceScope {
  const pathOf = (uid: EntityUidJson): string | undefined => {
    const { type, id } = '__entity' in uid ? uid.__entity : uid;
    return type === PATH_TYPE ? id : undefined;
  };
  const of = (kind: 'eq' | 'in', target: { entity: EntityUidJson } | { slot: string }): ResourceScope => {
    const path = 'entity' in target ? pathOf(target.entity) : undefined;
    return path === undefined ? { kind: 'never' } : { kind, path };
  };
  switch (c.op) {
    case 'All':
      return { kind: 'all' };
    case '==':
      return of('eq', c);
    case 'in':
      return of('in', c);
    case 'is':
      if (c.entity_type !== PATH_TYPE) return { kind: 'never' };
      return c.in ? of('in', c.in) : { kind: 'all' };
    default:
      return { kind: 'never' };
  }
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
