import type { Expr, PolicyJson } from './cedar-runtime.js';

/** What of one request variable (principal or resource) statements may read. */
export interface EntityNeeds {
  /** Attribute names read with `.attr` or `has`; `'all'` when unknown. */
  attrs: Set<string> | 'all';
  /** True when hierarchy (`in`) may be evaluated, so parents must be sent. */
  parents: boolean;
}

/**
 * The parts of a request a set of statements can observe. The request builder
 * sends only these: crossing into wasm costs microseconds per field, and a
 * smaller request also makes the decision memo hit more often (a policy that
 * never reads `context.now` does not vary by the second).
 *
 * Soundness: a part is left out only when no statement can observe it. Every
 * use of `principal`/`resource`/`context` other than reading a named
 * attribute (`.x`, `has x`) — passing the whole variable, comparing it, an
 * unknown expression form — falls back to sending everything.
 */
export interface RequestNeeds {
  principal: EntityNeeds;
  resource: EntityNeeds;
  /** Context fields read; `'all'` when unknown. */
  context: Set<string> | 'all';
}

/** Needs of no statement at all; grow it with {@link addStatementNeeds}. */
export function emptyNeeds(): RequestNeeds {
  return {
    principal: { attrs: new Set(), parents: false },
    resource: { attrs: new Set(), parents: false },
    context: new Set(),
  };
}

/** Merges `b` into `a`. */
export function mergeNeeds(a: RequestNeeds, b: RequestNeeds): RequestNeeds {
  a.principal.attrs = unionAttrs(a.principal.attrs, b.principal.attrs);
  a.principal.parents ||= b.principal.parents;
  a.resource.attrs = unionAttrs(a.resource.attrs, b.resource.attrs);
  a.resource.parents ||= b.resource.parents;
  a.context = unionAttrs(a.context, b.context);
  return a;
}

/**
 * The needs of one statement (its JSON form from Cedar). The resource scope
 * is not counted: the engine checks it in JS and hands Cedar the statement
 * with that scope removed (see `PolicyStatement.cedar`).
 */
export function statementNeeds(policy: PolicyJson): RequestNeeds {
  const needs = emptyNeeds();
  if (policy.principal.op === 'in' || (policy.principal.op === 'is' && policy.principal.in)) {
    needs.principal.parents = true;
  }
  for (const clause of policy.conditions) walk(clause.body, needs);
  return needs;
}

function unionAttrs(a: Set<string> | 'all', b: Set<string> | 'all'): Set<string> | 'all' {
  if (a === 'all' || b === 'all') return 'all';
  for (const x of b) a.add(x);
  return a;
}

type VarName = 'principal' | 'action' | 'resource' | 'context';

function readAttr(needs: RequestNeeds, v: VarName, attr: string): void {
  if (v === 'context') {
    if (needs.context !== 'all') needs.context.add(attr);
  } else if (v === 'principal' || v === 'resource') {
    const e = needs[v];
    if (e.attrs !== 'all') e.attrs.add(attr);
  }
}

function useWhole(needs: RequestNeeds, v: VarName | 'unknown'): void {
  if (v === 'context' || v === 'unknown') needs.context = 'all';
  if (v === 'principal' || v === 'unknown') needs.principal = { attrs: 'all', parents: true };
  if (v === 'resource' || v === 'unknown') needs.resource = { attrs: 'all', parents: true };
}

const BINARY = new Set([
  '==',
  '!=',
  'in',
  '<',
  '<=',
  '>',
  '>=',
  '&&',
  '||',
  '+',
  '-',
  '*',
  'contains',
  'containsAll',
  'containsAny',
  'getTag',
  'hasTag',
]);
const UNARY = new Set(['!', 'neg', 'isEmpty']);

function varOf(e: unknown): VarName | undefined {
  if (e && typeof e === 'object' && 'Var' in e && Object.keys(e).length === 1) {
    const v = (e as { Var: unknown }).Var;
    if (v === 'principal' || v === 'action' || v === 'resource' || v === 'context') return v;
  }
  return undefined;
}

function walk(e: Expr, needs: RequestNeeds): void {
  const keys = Object.keys(e);
  const op = keys[0];
  if (keys.length !== 1 || op === undefined) {
    useWhole(needs, 'unknown');
    return;
  }
  const node = (e as Record<string, unknown>)[op];
  if (op === 'Value' || op === 'Slot') {
    // Literals observe nothing.
  } else if (op === 'Var') {
    useWhole(needs, varOf(e) ?? 'unknown');
  } else if (op === '.' || op === 'has') {
    const { left, attr } = node as { left: Expr; attr: string | string[] };
    const v = varOf(left);
    // `context has now.hour` reads `now`; sending all of `now` is enough.
    const first = Array.isArray(attr) ? attr[0] : attr;
    if (v !== undefined && typeof first === 'string') readAttr(needs, v, first);
    else walk(left, needs);
  } else if (BINARY.has(op)) {
    const { left, right } = node as { left: Expr; right: Expr };
    walk(left, needs);
    walk(right, needs);
  } else if (UNARY.has(op)) {
    walk((node as { arg: Expr }).arg, needs);
  } else if (op === 'like') {
    walk((node as { left: Expr }).left, needs);
  } else if (op === 'is') {
    const n = node as { left: Expr; in?: Expr };
    walk(n.left, needs);
    if (n.in) walk(n.in, needs);
  } else if (op === 'if-then-else') {
    const n = node as { if: Expr; then: Expr; else: Expr };
    walk(n.if, needs);
    walk(n.then, needs);
    walk(n.else, needs);
  } else if (op === 'Set') {
    for (const x of node as Expr[]) walk(x, needs);
  } else if (op === 'Record') {
    for (const x of Object.values(node as Record<string, Expr>)) walk(x, needs);
  } else if (Array.isArray(node)) {
    // An extension call (`ip`, `isInRange`, `decimal`, …): its arguments.
    for (const x of node as Expr[]) walk(x, needs);
  } else {
    useWhole(needs, 'unknown');
  }
}
