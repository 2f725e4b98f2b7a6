import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import type { AuthzRequest } from './authz-request.js';
import { cedarRuntimeGeneration, type Expr, policySetTextToParts, policyToJson } from './cedar-runtime.js';
import { PolicyEngine } from './policy-engine.js';
import { POLICY_TEXT_LIMITS, type PolicyTextLimits, scanPolicyText } from './policy-text-bounds.js';

const UNBOUNDED: PolicyTextLimits = { maxBytes: 1e9, maxStatements: 1e9, maxNesting: 1e9, maxDepth: 1e9 };
const W = (body: string) => `permit(principal, action, resource) when { ${body} };`;
const chain = (term: string, sep: string, n: number) => Array.from({ length: n }, () => term).join(sep);

function refusal(text: string): CustosError {
  try {
    scanPolicyText(text);
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    return e as CustosError;
  }
  throw new Error('expected the scan to refuse the text');
}

const task = (policies: string[], i = 0): AuthzRequest => ({
  principal: {
    type: 'Task',
    id: `tsk-${i}`,
    attrs: { role: 'search', depth: 0, labels: ['team=search'] },
    parents: [{ type: 'Identity', id: 'gpu-node-7' }],
  },
  policies,
  action: 'read',
  path: 'kv/search/index-key',
  context: { sourceIp: '10.1.2.3', now: new Date('2025-03-04T10:00:00Z'), depth: 0, taskChain: [`tsk-${i}`] },
});

// Statements that nest in one way, n levels deep: each grows without bound in
// one dimension the parser, validator or evaluator recurses on.
const FAMILIES: Record<string, (n: number) => string> = {
  parens: (n) => W(`${'('.repeat(n)}true${')'.repeat(n)}`),
  'not-parens': (n) => W(`${'!('.repeat(n)}true${')'.repeat(n)}`),
  'negate-parens': (n) => W(`${'-('.repeat(n)}context.depth${')'.repeat(n)} == 0`),
  sets: (n) => W(`${'['.repeat(n)}1${']'.repeat(n)}.contains(${'['.repeat(n - 1)}1${']'.repeat(n - 1)})`),
  records: (n) => W(`${'{a: '.repeat(n)}1${'}'.repeat(n)} == ${'{a: '.repeat(n)}1${'}'.repeat(n)}`),
  'cycle-brackets': (n) =>
    W(
      `${Array.from({ length: n }, (_, i) => ['!(', '{a: ', '[', '-('][i % 4]).join('')}1${Array.from(
        { length: n },
        (_, i) => [')', '}', ']', ')'][(n - 1 - i) % 4],
      ).join('')} == 1`,
    ),
  'and-chain': (n) => W(chain('context.depth == 0', ' && ', n)),
  'or-chain': (n) => W(chain('context.depth == 1', ' || ', n)),
  'plus-chain': (n) => W(`context.depth${' + 1'.repeat(n)} == -1`),
  'minus-chain': (n) => W(`context.depth${' - 1'.repeat(n)} == 1`),
  'times-chain': (n) => W(`context.depth${' * 1'.repeat(n)} == 1`),
  'else-if-chain': (n) => W(`${'if context.depth == 1 then false else '.repeat(n)}true`),
  'if-in-parens': (n) => W(`${'if true then ('.repeat(n)}true${') else false'.repeat(n)}`),
  'if-and-mix': (n) =>
    W(`${'if context.depth == 0 && context.depth < 1 then ('.repeat(n)}true${') else false'.repeat(n)}`),
  'contains-chain': (n) => W(chain('principal.labels.contains("team=a")', ' || ', n)),
  'has-chain': (n) => W(chain('context has now', ' && ', n)),
  'like-chain': (n) => W(chain('resource.path like "kv/*"', ' && ', n)),
  'member-chain': (n) => W(`context${'.now'.repeat(n)} == 1`),
  'index-chain': (n) => W(`context${'["now"]'.repeat(n)} == 1`),
  'ext-chain': (n) => W(chain('context.source_ip.isInRange(ip("10.0.0.0/8"))', ' || ', n)),
  'is-in-chain': (n) => W(chain('principal is Custos::Task in Custos::Identity::"x"', ' || ', n)),
  'when-clauses': (n) => `permit(principal, action, resource)${' when { true }'.repeat(n)};`,
  'unless-clauses': (n) => `permit(principal, action, resource)${' unless { false }'.repeat(n)};`,
  'parens-around-and-chain': (n) => W(`${'('.repeat(15)}${chain('context.depth == 0', ' && ', n)}${')'.repeat(15)}`),
};

const accepts = (text: string) => {
  try {
    scanPolicyText(text);
    return true;
  } catch {
    return false;
  }
};

/** The largest n the default bounds admit for `family` (they are monotone in n). */
function largestAdmitted(family: (n: number) => string): number {
  let lo = 0;
  let hi = 1;
  while (accepts(family(hi))) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (accepts(family(mid))) lo = mid;
    else hi = mid;
  }
  return lo;
}

// A policy an organisation might really write: 48 statements, role lists,
// office hours, network ranges, labels, a break-glass forbid, comments.
function realisticPolicy(): string {
  const teams = ['search', 'billing', 'risk', 'ingest', 'ranking', 'ads', 'support', 'infra'];
  const out = ['// Team access for the agent platform. Reviewed quarterly.'];
  for (const team of teams) {
    out.push(
      `@id("${team}-read")`,
      `permit(principal is Custos::Task, action in [Custos::Action::"read", Custos::Action::"list"], resource in Custos::Path::"kv/${team}/")`,
      `  when { principal.labels.contains("team=${team}") && context.now.hour >= 6 && context.now.hour < 22 &&`,
      '         context.now.weekday >= 1 && context.now.weekday <= 5 && context.source_ip.isInRange(ip("10.0.0.0/8")) &&',
      `         (principal.role == "${team}-agent" || principal.role == "${team}-batch" || principal.role == "${team}-oncall" ||`,
      `          principal.role == "${team}-indexer" || principal.role == "${team}-eval" || principal.role == "${team}-canary") };`,
      `permit(principal is Custos::Task, action == Custos::Action::"write", resource in Custos::Path::"kv/${team}/scratch/")`,
      `  when { ["${team}-agent", "${team}-batch", "${team}-oncall"].contains(principal.role) && context.depth <= 2 }`,
      '  unless { principal.labels.contains("env=canary") };',
      `permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"db-${team}/")`,
      `  when { principal has labels && principal.labels.containsAny(["tier=gold", "tier=silver"]) && context.task_chain.contains("root-${team}") };`,
      `permit(principal in Custos::Identity::"gpu-node-${team}", action == Custos::Action::"read", resource)`,
      `  when { resource.path like "kv/models/${team}/*" && (context.now.hour >= 8 && context.now.hour < 18) };`,
      `forbid(principal, action, resource in Custos::Path::"kv/${team}/break-glass/")`,
      `  unless { context.depth == 0 && principal is Custos::Task && principal.labels.contains("oncall=${team}") };`,
      `permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"kv/${team}/")`,
      `  when { context.depth < 3 && (if context.now.weekday == 0 || context.now.weekday == 6 then context.now.hour >= 10 else true) };`,
    );
  }
  return out.join('\n');
}

describe('policy text bounds: what is refused', () => {
  it('refuses a document over the size bound, counting UTF-8 bytes, not characters', () => {
    // 30,000 characters of a 3-byte character: under 64 Ki characters, over 64 KiB.
    const text = W(`context.task_chain.contains("${'€'.repeat(30_000)}")`);
    expect(text.length).toBeLessThan(POLICY_TEXT_LIMITS.maxBytes);
    expect(refusal(text).detail).toBe('larger than 65536 bytes');
  });

  it('refuses more statements than the bound', () => {
    const text = 'permit(principal, action, resource);\n'.repeat(POLICY_TEXT_LIMITS.maxStatements + 1);
    expect(refusal(text).detail).toBe('more than 256 statements');
    expect(scanPolicyText('permit(principal, action, resource);\n'.repeat(256)).statements).toBe(256);
  });

  it.each([
    ['parentheses', `${'('.repeat(200)}true${')'.repeat(200)}`],
    ['negations', `${'!('.repeat(200)}true${')'.repeat(200)}`],
    ['unary minus', `${'-('.repeat(200)}1${')'.repeat(200)} == 0`],
    ['sets', `${'['.repeat(200)}1${']'.repeat(200)} == [1]`],
    ['records', `${'{a: '.repeat(200)}1${'}'.repeat(200)} == {a: 1}`],
    ['unclosed brackets', '('.repeat(10_000)],
  ])('refuses %s nested beyond the bracket bound, naming where', (_, body) => {
    const e = refusal(W(body));
    expect(e.code).toBe('CUSTOS_ERR_INVALID_POLICY');
    expect(e.detail).toMatch(/^line 1:\d+: brackets nested more than 16 deep$/);
  });

  it.each([
    ['a long && chain', chain('context.depth == 0', ' && ', 400)],
    ['a long || chain', chain('context.depth == 1', ' || ', 400)],
    ['a long + chain', `context.depth${' + 1'.repeat(400)} == 0`],
    ['a long .contains chain', chain('principal.labels.contains("x")', ' || ', 400)],
    ['a long attribute chain', `context${'.now'.repeat(400)} == 1`],
    ['a long else-if chain', `${'if context.depth == 1 then false else '.repeat(400)}true`],
    [
      'shallow brackets around long chains',
      `(((${chain('context.depth == 0', ' && ', 20)}) && ${chain('true', ' && ', 20)}))`,
    ],
  ])('refuses %s as nested too deeply', (_, body) => {
    const e = refusal(W(body));
    expect(e.detail).toMatch(/^statement 1 \(line 1:1\) is nested more than 40 levels deep; /);
  });

  it('refuses a statement with too many when/unless clauses (Cedar joins them into one chain)', () => {
    expect(refusal(`permit(principal, action, resource)${' unless { false }'.repeat(60)};`).detail).toMatch(
      /nested more than 40 levels/,
    );
  });

  it('names the statement and line of a deep statement, and never quotes the text', () => {
    const secretish = 'fake-token-value-0123456789';
    const text = `permit(principal, action, resource);\n// ${secretish}\npermit(principal, action, resource)\n  when { ${chain(`context.task_chain.contains("${secretish}")`, ' || ', 60)} };`;
    const e = refusal(text);
    expect(e.detail).toMatch(/^statement 2 \(line 3:1\) is nested more than 40 levels deep/);
    expect(e.message).not.toContain(secretish);
  });

  it('refuses an unterminated string, which would hide the rest of the text from the scan', () => {
    expect(refusal(`permit(principal, action, resource) when { "abc\\" == x };\n${'('.repeat(500)}`).detail).toBe(
      'line 1:44: unterminated string',
    );
  });
});

describe('policy text bounds: what is not confused', () => {
  it('skips brackets, operators and quotes inside strings', () => {
    const inString = `"${'((((!!&&||[[{{'.repeat(500)}\\"${'))))'.repeat(100)}"`;
    const shape = scanPolicyText(W(`context.task_chain.contains(${inString})`));
    expect(shape.nesting).toBe(2);
    expect(shape.depth).toBeLessThan(10);
  });

  it('skips comments, including brackets and quotes in them', () => {
    const text = `// (((((((((((((((((((((( " unbalanced quote\npermit(principal, action, resource) // ${'&& '.repeat(500)}\n  when { true }; // [[[[[[[[[[[[[[[[[[[[`;
    expect(scanPolicyText(text)).toMatchObject({ statements: 1, nesting: 1 });
  });

  it('does not take // inside a string for a comment', () => {
    // If it did, the deep parentheses after the string would be skipped.
    const e = refusal(W(`resource.path like "https://x/*" && ${'('.repeat(40)}true${')'.repeat(40)}`));
    expect(e.detail).toMatch(/brackets nested more than 16 deep/);
  });

  it('counts a semicolon inside a string as text, not as the end of a statement', () => {
    expect(scanPolicyText(W('context.task_chain.contains(";;;;")')).statements).toBe(1);
  });

  it('accepts a realistic large policy, and it decides as written', () => {
    const text = realisticPolicy();
    const shape = scanPolicyText(text);
    expect(shape.statements).toBe(48);
    // Well inside the bounds: room to grow.
    expect(shape.depth).toBeLessThanOrEqual(POLICY_TEXT_LIMITS.maxDepth / 2);
    expect(shape.nesting).toBeLessThanOrEqual(POLICY_TEXT_LIMITS.maxNesting / 2);

    const engine = new PolicyEngine();
    expect(engine.set('platform', text).statements).toBe(48);
    const req = task(['platform']);
    if (req.principal.type !== 'Task') throw new Error('unreachable');
    const asRole = (role: string): AuthzRequest => ({
      ...req,
      principal: { ...req.principal, attrs: { ...req.principal.attrs, role } },
    });
    expect(engine.authorize(asRole('search-oncall')).allowed).toBe(true);
    expect(engine.authorize(asRole('billing-agent')).allowed).toBe(false);
    expect(engine.authorize({ ...asRole('search-agent'), path: 'kv/search/break-glass/root' }).allowed).toBe(false);
  });

  it('bounds the depth of what Cedar builds from above, for random expressions', () => {
    fc.assert(
      fc.property(expression(), (e) => {
        const text = W(e.text);
        const parsed = policyToJson(text);
        if (parsed.type === 'failure') throw new Error(`generated text does not parse: ${text}`);
        const body = parsed.json.conditions[0]?.body as Expr;
        // Cedar joins the clause into the policy's condition one level up.
        expect(scanPolicyText(text, UNBOUNDED).depth).toBeGreaterThanOrEqual(treeDepth(body) + 1);
      }),
      { numRuns: 300 },
    );
  });
});

// Cedar's lexer (cedar-policy-core/src/parser/grammar.lalrpop, 4.x):
// whitespace is `\s` (Unicode White_Space), a comment is `//[^\n\r]*` (it ends
// at a line feed *or* a carriage return), strings are `"(\\.|[^"\\])*"` (`.`
// is anything but a line feed), and there are no block comments (`/` is the
// division operator). The scan must see exactly the tokens Cedar sees: a
// comment that runs on in the scan while Cedar ends it hides what follows.
const CEDAR_WHITESPACE = [
  '\t',
  '\n',
  '\v',
  '\f',
  '\r',
  ' ',
  '\u0085',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u2001',
  '\u2002',
  '\u2003',
  '\u2004',
  '\u2005',
  '\u2006',
  '\u2007',
  '\u2008',
  '\u2009',
  '\u200a',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000',
];
const cedarStatements = (text: string): number | undefined => {
  const parts = policySetTextToParts(text);
  return parts.type === 'success' ? parts.policies.length + parts.policy_templates.length : undefined;
};

describe('policy text bounds: the scan reads tokens as Cedar does', () => {
  const deep = W(`${'('.repeat(20)}true${')'.repeat(20)}`);

  it.each([
    ['a carriage return', '\r'],
    ['CR LF', '\r\n'],
    ['a line feed', '\n'],
  ])('a // comment ends at %s, as in Cedar: brackets after it are measured', (_, eol) => {
    const text = `// a comment${eol}${deep}`;
    expect(cedarStatements(text.replace(deep, 'permit(principal, action, resource);'))).toBe(1);
    expect(refusal(text).detail).toMatch(/^line \d+:\d+: brackets nested more than 16 deep$/);
  });

  it('a // comment ended by a carriage return cannot hide a long && chain or extra statements', () => {
    const andChain = `// x\r${W(chain('context.depth == 0', ' && ', 200))}`;
    expect(refusal(andChain).detail).toMatch(/is nested more than 40 levels deep/);
    const many = `// x\r${'permit(principal, action, resource);\r'.repeat(POLICY_TEXT_LIMITS.maxStatements + 1)}`;
    expect(cedarStatements(many)).toBe(POLICY_TEXT_LIMITS.maxStatements + 1);
    expect(refusal(many).detail).toBe('more than 256 statements');
  });

  it('treats exactly what Cedar treats as whitespace as whitespace', () => {
    for (const ws of CEDAR_WHITESPACE) {
      const text = `${ws}permit(principal,${ws}action,${ws}resource)${ws};${ws}`;
      expect(cedarStatements(text), JSON.stringify(ws)).toBe(1);
      expect(scanPolicyText(text).statements, JSON.stringify(ws)).toBe(1);
    }
    // Not whitespace to Cedar (nor to the scan): a byte-order mark, a zero-width space.
    for (const other of ['\ufeff', '\u200b']) {
      expect(cedarStatements(`permit(principal, action, resource);${other}`)).toBeUndefined();
    }
  });

  it('a // comment runs on past Unicode line separators, as in Cedar', () => {
    // U+2028 and U+0085 end a line for some editors, not for Cedar's comment.
    for (const sep of ['\u2028', '\u2029', '\u0085', '\v', '\f']) {
      const text = `// hidden ${sep}permit(principal, action, resource);\npermit(principal, action, resource);`;
      expect(cedarStatements(text), JSON.stringify(sep)).toBe(1);
      expect(scanPolicyText(text).statements, JSON.stringify(sep)).toBe(1);
    }
  });

  it('has no block comments: /* is a division and a product, and what follows is measured', () => {
    expect(cedarStatements('/* c */ permit(principal, action, resource);')).toBeUndefined();
    expect(refusal(`/* ${'('.repeat(20)} */ permit(principal, action, resource);`).detail).toMatch(
      /brackets nested more than 16 deep/,
    );
    // `/` and `%` bind as `*` does (Cedar's parser knows them, to refuse them).
    expect(scanPolicyText(W(`context.depth${' / 1'.repeat(10)} == 1`), UNBOUNDED).depth).toBe(
      scanPolicyText(W(`context.depth${' * 1'.repeat(10)} == 1`), UNBOUNDED).depth,
    );
    expect(scanPolicyText(W(`context.depth${' % 1'.repeat(10)} == 1`), UNBOUNDED).depth).toBe(
      scanPolicyText(W(`context.depth${' * 1'.repeat(10)} == 1`), UNBOUNDED).depth,
    );
  });

  it('refuses a string with a backslash before a line feed, which Cedar cannot read as a string either', () => {
    const text = `permit(principal, action, resource) when { "a\\\nb" == "" };`;
    expect(cedarStatements(text)).toBeUndefined();
    expect(refusal(text).detail).toBe('line 1:44: invalid string (a backslash before a line break)');
  });

  it('counts the statements Cedar counts, for random documents of statements, comments, strings and whitespace', () => {
    fc.assert(
      fc.property(cedarDocument(), (doc) => {
        const expected = cedarStatements(doc.text);
        if (expected === undefined) throw new Error(`generated text does not parse: ${JSON.stringify(doc.text)}`);
        expect(expected).toBe(doc.statements);
        const shape = scanPolicyText(doc.text, UNBOUNDED);
        expect(shape.statements).toBe(expected);
        // Every bracket Cedar reads is measured: the deepest is the `when`
        // clause's `{` plus the parentheses inside it.
        expect(shape.nesting).toBe(doc.nesting);
      }),
      { numRuns: 500 },
    );
  });

  it('counts the statements Cedar counts, for random token soup Cedar parses', () => {
    let parsed = 0;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...SOUP), { maxLength: 40 }), (pieces) => {
        const text = pieces.join('');
        const expected = cedarStatements(text);
        if (expected === undefined) return;
        parsed++;
        expect(scanPolicyText(text, UNBOUNDED).statements).toBe(expected);
      }),
      { numRuns: 3000 },
    );
    // The soup is not all noise: a fair share of it is Cedar.
    expect(parsed).toBeGreaterThan(100);
  });
});

// Pieces of text that end, start or hide tokens in Cedar: whitespace of every
// kind, line ends, comment openers, quotes, escapes, brackets, statement ends.
const SOUP = [
  'permit(principal, action, resource)',
  'forbid(principal, action, resource)',
  ' when { true }',
  ' when { (',
  ')',
  ' }',
  ';',
  '//',
  '// c ',
  '/',
  '*',
  '"',
  '"s"',
  '"\\""',
  '"//"',
  '";"',
  '\\',
  '\r',
  '\n',
  '\r\n',
  ' ',
  '\t',
  '\u0085',
  '\u2028',
  '\u00a0',
  '@id("x")',
  '(',
  ' context.depth == 0',
  ' && ',
];

interface CedarDocument {
  text: string;
  statements: number;
  nesting: number;
}

/** Valid Cedar documents whose tokens are separated by every kind of whitespace and comment. */
function cedarDocument(): fc.Arbitrary<CedarDocument> {
  const commentChar = fc.constantFrom(
    'a',
    ' ',
    ';',
    '"',
    '(',
    '{',
    '[',
    '\\',
    '/',
    '*',
    '\u2028',
    '\u0085',
    '\v',
    '\f',
  );
  const comment = fc
    .tuple(fc.array(commentChar, { maxLength: 12 }), fc.constantFrom('\n', '\r', '\r\n', '\r\r', '\n\r'))
    .map(([body, end]) => `//${body.join('')}${end}`);
  const gap = fc
    .array(fc.oneof(fc.constantFrom(...CEDAR_WHITESPACE), comment), { maxLength: 3 })
    .map((parts) => parts.join(''));
  // A raw carriage return in a string is lexed as part of it, then refused
  // by Cedar's unescaping, so only line feeds appear raw here.
  const stringChar = fc.constantFrom('a', ' ', ';', '//', '(', ')', '{', '\\"', '\\\\', '\\n', '\n', '\u2028');
  const string = fc.array(stringChar, { maxLength: 8 }).map((cs) => `"${cs.join('')}"`);
  const statement = fc
    .tuple(
      fc.constantFrom('permit', 'forbid'),
      fc.array(gap, { minLength: 12, maxLength: 12 }),
      fc.integer({ min: 0, max: 30 }),
      string,
      fc.boolean(),
    )
    .map(([effect, g, parens, str, annotated]) => {
      const at = annotated ? `@id(${str})${g[11]}` : '';
      const text =
        `${at}${effect}${g[0]}(${g[1]}principal${g[2]},${g[3]}action${g[4]},${g[5]}resource${g[6]})${g[7]}` +
        `when${g[8]}{${'('.repeat(parens)}${g[9]}context.task_chain.contains(${str})${')'.repeat(parens)}}${g[10]};`;
      return { text, nesting: parens + 2 };
    });
  return fc.tuple(gap, fc.array(fc.tuple(statement, gap), { minLength: 1, maxLength: 5 })).map(([lead, rest]) => ({
    text: lead + rest.map(([st, g]) => st.text + g).join(''),
    statements: rest.length,
    nesting: Math.max(...rest.map(([st]) => st.nesting)),
  }));
}

describe('policy text bounds: Cedar survives everything they admit', () => {
  it('every nesting family, at the largest size admitted, passes Cedar without a fault — cold, warmed up, and with 40% of the stack in use', () => {
    const generation = cedarRuntimeGeneration();
    const runAll = () => {
      for (const [name, family] of Object.entries(FAMILIES)) {
        const n = largestAdmitted(family);
        expect(n, name).toBeGreaterThan(0);
        const engine = new PolicyEngine({ maxDecisionsPerSet: 0 });
        try {
          engine.set(name, family(n));
          engine.authorize(task([name]));
        } catch (e) {
          // Ill-typed families are refused by Cedar's validator: a clean
          // refusal, after Cedar parsed and type-checked the whole tree.
          expect((e as CustosError).code, name).toBe('CUSTOS_ERR_INVALID_POLICY');
          expect((e as CustosError).detail, name).not.toMatch(/engine failed/);
        }
      }
    };
    // Cold, then warm: once V8 has optimised Cedar's hot functions their
    // frames are larger, and Cedar overflows at about a third of the depth it
    // survives cold — the bounds are set for the warm case.
    runAll();
    const warm = new PolicyEngine({ maxDecisionsPerSet: 0 });
    warm.set('warm', FAMILIES['and-chain']?.(20) as string);
    for (let i = 0; i < 2000; i++) warm.authorize(task(['warm'], i));
    runAll();
    atStackUse(0.4, runAll);
    expect(cedarRuntimeGeneration()).toBe(generation);
  }, 120_000);
});

/** Runs `fn` with about `fraction` of the JS stack already in use. */
function atStackUse(fraction: number, fn: () => void): void {
  let max = 0;
  const probe = (k: number): number => {
    max = k;
    return probe(k + 1) + 1;
  };
  try {
    probe(0);
  } catch {
    // RangeError at the limit: `max` frames fit.
  }
  const descend = (k: number): number => {
    if (k <= 0) {
      fn();
      return 0;
    }
    return descend(k - 1) + 1;
  };
  descend(Math.floor(max * fraction));
}

/** Depth of a Cedar JSON expression tree (each operator, call or literal collection one level). */
function treeDepth(e: Expr): number {
  const [op, node] = Object.entries(e)[0] as [string, unknown];
  if (op === 'Value' || op === 'Var' || op === 'Slot') return 1;
  const kids: Expr[] = [];
  if (Array.isArray(node)) kids.push(...(node as Expr[]));
  else if (op === 'Record') kids.push(...Object.values(node as Record<string, Expr>));
  else {
    const n = node as Record<string, unknown>;
    for (const k of ['left', 'right', 'arg', 'if', 'then', 'else', 'in']) if (n[k]) kids.push(n[k] as Expr);
  }
  return 1 + Math.max(0, ...kids.map(treeDepth));
}

// Random Cedar expressions printed with the fewest parentheses precedence
// allows, so long operator chains appear unbracketed, as an author writes them.
interface Printed {
  text: string;
  /** 0 if-then-else, 1 ||, 2 &&, 3 relation, 4 + -, 5 *, 6 unary, 7 member/primary. */
  tier: number;
}

function expression(): fc.Arbitrary<Printed> {
  const paren = (p: Printed, needed: boolean) => (needed ? `(${p.text})` : p.text);
  const { expr } = fc.letrec<{ expr: Printed; leaf: Printed }>((tie) => ({
    leaf: fc.constantFrom(
      ...['true', '1', '"s"', 'context.depth', 'principal', 'resource.path', 'context.now.hour'].map((text) => ({
        text,
        tier: 7,
      })),
    ),
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('leaf'),
      fc
        .tuple(fc.constantFrom(['||', 1], ['&&', 2], ['+', 4], ['-', 4], ['*', 5]), tie('expr'), tie('expr'))
        .map(([[op, tier], a, b]) => ({
          text: `${paren(a, a.tier < (tier as number))} ${op} ${paren(b, b.tier <= (tier as number))}`,
          tier: tier as number,
        })),
      fc.tuple(fc.constantFrom('==', '<', '!=', 'in'), tie('expr'), tie('expr')).map(([op, a, b]) => ({
        text: `${paren(a, a.tier <= 3)} ${op} ${paren(b, b.tier <= 3)}`,
        tier: 3,
      })),
      fc.tuple(fc.constantFrom('!', '-'), tie('expr')).map(([op, a]) => ({
        text: `${op}${paren(a, a.tier < 7)}`,
        tier: 6,
      })),
      fc.tuple(fc.constantFrom('.a', '.contains(1)', '["k"]'), tie('expr')).map(([m, a]) => ({
        text: `${paren(a, a.tier < 7)}${m}`,
        tier: 7,
      })),
      fc.tuple(tie('expr'), tie('expr')).map(([a, b]) => ({ text: `[${a.text}, ${b.text}]`, tier: 7 })),
      fc.tuple(tie('expr'), tie('expr')).map(([a, b]) => ({ text: `{a: ${a.text}, b: ${b.text}}`, tier: 7 })),
      fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([c, a, b]) => ({
        text: `if ${c.text} then ${a.text} else ${b.text}`,
        tier: 0,
      })),
      fc.tuple(tie('expr')).map(([a]) => ({ text: `${paren(a, a.tier <= 3)} has a`, tier: 3 })),
      fc.tuple(tie('expr')).map(([a]) => ({ text: `${paren(a, a.tier <= 3)} like "x*"`, tier: 3 })),
      fc.tuple(tie('expr')).map(([a]) => ({ text: `ip("10.0.0.1").isInRange(${a.text})`, tier: 7 })),
    ),
  }));
  return expr;
}
