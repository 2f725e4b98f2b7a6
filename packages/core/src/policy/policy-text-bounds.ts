import { CustosError } from '../errors/index.js';

// Why this exists: Cedar's parser, validator and evaluator recurse on the
// policy's syntax tree inside its WebAssembly module, with no depth guard of
// their own. Too deep a tree runs the stack out — V8's stack (the module's
// frames live there, and once V8 has optimised Cedar's hot functions they are
// large) or the module's own in-memory stack — and the module is left trapped:
// every later call into it fails, so every policy write and every uncached
// decision failed until the process restarted. Measured with Cedar 4.13 on
// Node 20, in a warmed-up process: the parser fails at about 65 nested
// brackets, the evaluator at an expression about 104 levels deep (a `&&`
// chain of 104 terms), and either fails sooner when the caller has already
// used part of the stack. Cedar must never see such a policy. This scan
// measures the text with a small, non-recursive tokenizer (strings and
// comments cannot confuse it) and refuses what is beyond the bounds below,
// which hold with half of V8's stack already in use (pinned by
// policy-text-bounds.test.ts) and are far above what a hand-written policy
// needs. A fault that happens anyway is contained by cedar-runtime.ts.
//
// The scan is only as good as its agreement with Cedar's lexer about where
// tokens start and end: text the scan takes for a comment or a string while
// Cedar reads it as code is never measured. So it follows Cedar's token rules
// exactly (cedar-policy-core/src/parser/grammar.lalrpop, Cedar 4.x):
// whitespace is Rust's `\s`, Unicode White_Space (below); a comment is
// `//[^\n\r]*` — it ends at a line feed *or* a carriage return; a string is
// `"(\\.|[^"\\])*"`, where `.` is any character but a line feed; there are no
// block comments (`/` is the division operator). A property test checks the
// scan's statement count against Cedar's parse of random documents.

/** Bounds on a policy document, checked on its text before Cedar sees it. */
export interface PolicyTextLimits {
  /** Size of the document in UTF-8 bytes. */
  readonly maxBytes: number;
  /** `permit`/`forbid` statements in one document. */
  readonly maxStatements: number;
  /** Brackets — `(`, `[`, `{` — open at once. */
  readonly maxNesting: number;
  /** Upper bound on the depth of one statement's expression tree (see {@link scanPolicyText}). */
  readonly maxDepth: number;
}

/** The bounds the server applies. */
export const POLICY_TEXT_LIMITS: PolicyTextLimits = Object.freeze({
  maxBytes: 64 * 1024,
  maxStatements: 256,
  maxNesting: 16,
  maxDepth: 40,
});

/** What {@link scanPolicyText} measured. */
export interface PolicyTextShape {
  /** UTF-8 bytes. */
  readonly bytes: number;
  /** Statements (text up to each top-level `;`, and any text after the last one). */
  readonly statements: number;
  /** Most brackets open at once. */
  readonly nesting: number;
  /** The largest expression-depth estimate of one statement. */
  readonly depth: number;
}

// Operator precedence tiers, loosest first, as in Cedar's grammar:
// `if … then … else`, `||`, `&&`, relations (== != < <= > >= in has like is),
// `+ -`, `*`, then prefix (`!`, unary `-`) and postfix (`.attr`, `.m(…)`,
// `[…]`, a call `f(…)`) operators, which each add one node to a chain.
const IF = 0;
const OR = 1;
const AND = 2;
const REL = 3;
const ADD = 4;
const MUL = 5;
const UNARY = 6;
/** `then` / `else`: split an `if` into its parts without adding a level. */
const THEN = 7;

// A segment (the tokens between separators inside one bracket) is a flat
// list: an operand is its depth (>= 0), an operator is -(tier + 1).
const op = (tier: number): number => -(tier + 1);
const tierOf = (item: number): number => -item - 1;

const KEYWORD_TIER = new Map<string, number>([
  ['if', IF],
  ['then', THEN],
  ['else', THEN],
  // A statement's conditions are joined with `&&`.
  ['when', AND],
  ['unless', AND],
  ['has', REL],
  ['like', REL],
  ['is', REL],
  ['in', REL],
]);

/**
 * Upper bound on the depth of the tree Cedar builds for the flat segment
 * `items[from, to)`, at precedence `tier`: the operators of this tier form a
 * left-leaning chain, so the depth is at most their number plus the deepest
 * operand (a part made of tighter-binding operators). Recursion here is at most
 * eight calls deep, whatever the input.
 */
function estimate(items: readonly number[], from: number, to: number, tier: number): number {
  if (tier === UNARY) {
    let ops = 0;
    let deepest = 0;
    for (let i = from; i < to; i++) {
      const x = items[i] as number;
      if (x < 0) ops++;
      else if (x > deepest) deepest = x;
    }
    return ops + deepest;
  }
  let count = 0;
  let deepest = 0;
  let start = from;
  for (let i = from; i <= to; i++) {
    const x = i < to ? (items[i] as number) : undefined;
    const t = x !== undefined && x < 0 ? tierOf(x) : -1;
    const splits = x === undefined || t === tier || (tier === IF && t === THEN);
    if (!splits) continue;
    deepest = Math.max(deepest, estimate(items, start, i, tier + 1));
    if (x !== undefined && t === tier) count++;
    start = i + 1;
  }
  return count + deepest;
}

interface Frame {
  /** Deepest finished segment so far (segments are split by `,` and `:`). */
  done: number;
  items: number[];
  /** The last token was an operand, so an adjacent operand is a postfix operator. */
  afterOperand: boolean;
  /** The last token was `::`, which joins name parts into one operand. */
  glued: boolean;
  /** The last token was `.`, so a keyword is an attribute name. */
  afterDot: boolean;
}

function frame(): Frame {
  return { done: 0, items: [], afterOperand: false, glued: false, afterDot: false };
}

/** 1-based `line L:C` of UTF-16 index `at`, for messages (never quotes the text). */
function position(text: string, at: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < at; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}:${at - lineStart + 1}`;
}

function refuse(detail: string): CustosError {
  return new CustosError('CUSTOS_ERR_INVALID_POLICY', detail);
}

/** Cedar's whitespace: Rust's `\s`, the Unicode White_Space property (not JavaScript's `\s`, which differs). */
function isCedarSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Where a `//` comment starting at `from` ends: at the first line feed or carriage return, as in Cedar. */
function commentEnd(text: string, from: number): number {
  for (let j = from; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 10 || c === 13) return j;
  }
  return text.length;
}

const isIdentStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isIdentPart = (c: number) => isIdentStart(c) || isDigit(c);

/**
 * Measures a policy document and refuses, with CUSTOS_ERR_INVALID_POLICY and a
 * positioned message that never quotes the text, one that exceeds `limits`:
 * too many bytes or statements, brackets nested too deep, an expression tree
 * that may be too deep, or an unterminated string (which would hide the rest
 * of the text from the scan). Everything else, unbalanced brackets included,
 * is left to Cedar's parser, which reports it better and which the bounds
 * keep safe.
 *
 * The expression depth is an upper bound computed from tokens, never from a
 * tree: inside each bracket, per separator-delimited segment, each precedence
 * tier contributes the number of its operators (a chain of them nests one
 * deeper per operator) and a bracket adds one level to the depth of what it
 * holds. So `a && b && c` counts 2, `!(!(x))` counts 4, `x.a.b.c` counts 3.
 * Strings (with `\` escapes) and `//` comments (to the next line feed or
 * carriage return) are skipped whole, exactly as Cedar's lexer skips them.
 *
 * Linear time, constant stack: it is safe on any input, which is the point.
 *
 * @example
 * ```ts
 * scanPolicyText('permit(principal, action, resource) when { context.depth < 2 };');
 * // { bytes: 64, statements: 1, nesting: 1, depth: 4 }
 * ```
 */
export function scanPolicyText(text: string, limits: PolicyTextLimits = POLICY_TEXT_LIMITS): PolicyTextShape {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) throw refuse(`larger than ${limits.maxBytes} bytes`);

  const stack: Frame[] = [frame()];
  let top = stack[0] as Frame;
  let statements = 0;
  let nesting = 0;
  let depth = 0;
  let statementHasTokens = false;

  const operand = (d: number) => {
    // Two operands in a row (`f(…)`, `x[…]`, `@id(…)`) is a postfix
    // application: one more level. Name parts joined by `::` are one operand.
    if (top.afterOperand && !top.glued) top.items.push(op(UNARY));
    top.items.push(d);
    top.afterOperand = true;
    top.glued = false;
    top.afterDot = false;
  };
  const operator = (tier: number) => {
    top.items.push(op(tier));
    top.afterOperand = false;
    top.glued = false;
    top.afterDot = false;
  };
  const segmentDepth = (f: Frame) => Math.max(f.done, estimate(f.items, 0, f.items.length, IF));
  const checkDepth = (d: number, at: number) => {
    if (d > limits.maxDepth) {
      throw refuse(
        `statement ${statements + 1} (${position(text, at)}) is nested more than ${limits.maxDepth} levels deep; ` +
          'shorten long &&/|| chains (e.g. [..].contains(x)) or split the statement',
      );
    }
  };
  const closeFrame = () => {
    const d = segmentDepth(top) + 1;
    checkDepth(d, statementStart);
    stack.pop();
    top = stack[stack.length - 1] as Frame;
    operand(d);
  };
  const endStatement = (at: number) => {
    const d = segmentDepth(top);
    checkDepth(d, at);
    depth = Math.max(depth, d);
    statements++;
    if (statements > limits.maxStatements) throw refuse(`more than ${limits.maxStatements} statements`);
    stack[0] = top = frame();
    statementHasTokens = false;
  };

  const n = text.length;
  let statementStart = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isCedarSpace(c)) {
      i++;
      continue;
    }
    const ch = text[i] as string;
    const next = text[i + 1];
    if (ch === '/' && next === '/') {
      // The line end itself is whitespace, skipped next.
      i = commentEnd(text, i + 2);
      continue;
    }
    if (!statementHasTokens) {
      statementHasTokens = true;
      statementStart = i;
    }
    if (ch === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') {
        if (text[j] === '\\') {
          // Cedar's `\\.` does not take a line feed: such a string is no
          // token to Cedar, so the scan must not guess where it ends.
          if (text.charCodeAt(j + 1) === 10) {
            throw refuse(`${position(text, i)}: invalid string (a backslash before a line break)`);
          }
          j += 2;
        } else {
          j++;
        }
      }
      if (j >= n) throw refuse(`${position(text, i)}: unterminated string`);
      operand(0);
      i = j + 1;
      continue;
    }
    if (ch === '(' || ch === '[' || ch === '{') {
      nesting = Math.max(nesting, stack.length);
      if (stack.length > limits.maxNesting) {
        throw refuse(`${position(text, i)}: brackets nested more than ${limits.maxNesting} deep`);
      }
      const f = frame();
      stack.push(f);
      top = f;
      i++;
      continue;
    }
    if (ch === ')' || ch === ']' || ch === '}') {
      // A closer ends the innermost open bracket, matching or not: a mismatch
      // is Cedar's to report (with a better message), and the bounds hold
      // either way. A closer with nothing open is a stray token.
      if (stack.length > 1) closeFrame();
      else operand(0);
      i++;
      continue;
    }
    if (ch === ';' && stack.length === 1) {
      endStatement(statementStart);
      i++;
      continue;
    }
    if (ch === ',' || (ch === ':' && next !== ':') || ch === ';') {
      // Elements, arguments, record fields: separate expressions.
      top.done = segmentDepth(top);
      top.items = [];
      top.afterOperand = false;
      top.glued = false;
      top.afterDot = false;
      i++;
      continue;
    }
    if (ch === ':' && next === ':') {
      top.glued = true;
      i += 2;
      continue;
    }
    const two = ch + (next ?? '');
    if (two === '&&' || two === '||') {
      operator(two === '&&' ? AND : OR);
      i += 2;
      continue;
    }
    if (two === '==' || two === '!=' || two === '<=' || two === '>=') {
      operator(REL);
      i += 2;
      continue;
    }
    if (ch === '<' || ch === '>') {
      operator(REL);
      i++;
      continue;
    }
    if (ch === '+' || ch === '*' || ch === '/' || ch === '%') {
      // `/` and `%` are Cedar multiplicative operators (its parser knows them to refuse them).
      operator(ch === '+' ? ADD : MUL);
      i++;
      continue;
    }
    if (ch === '-') {
      operator(top.afterOperand ? ADD : UNARY);
      i++;
      continue;
    }
    if (ch === '!') {
      operator(UNARY);
      i++;
      continue;
    }
    if (ch === '.') {
      operator(UNARY);
      top.afterDot = true;
      i++;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text.charCodeAt(j))) j++;
      const word = text.slice(i, j);
      const tier = top.afterDot ? undefined : KEYWORD_TIER.get(word);
      if (tier === undefined) operand(0);
      else operator(tier);
      i = j;
      continue;
    }
    if (isDigit(c)) {
      let j = i + 1;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      operand(0);
      i = j;
      continue;
    }
    // Anything else (`@`, `?`, a stray `&` or `=`) is not ours to judge:
    // Cedar's parser refuses what is not Cedar. Counted as an operand.
    operand(0);
    i++;
  }
  // Brackets left open are Cedar's to report; they count as closed here.
  while (stack.length > 1) closeFrame();
  if (statementHasTokens) endStatement(statementStart);
  return { bytes, statements, nesting, depth };
}
