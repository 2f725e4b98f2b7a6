import { isScopeSubset, POLICY_ACTIONS, type PolicyAction, scopeAllows, parseScope as serverParse } from '@custos/core';
import { describe, expect, it } from 'vitest';
import { parseScope, scopeCovers } from '../src/index.js';

/**
 * One table, run through the SDK's scope code and the server's
 * (packages/core/src/policy/task-scope.ts): both must give the expected
 * answer. `held` is a token's scope, `required` what a tool asks for.
 */
const COVERS: Array<[held: string, required: string, covered: boolean]> = [
  ['read:kv/team/db', 'read:kv/team/db', true],
  ['read:kv/team/db', 'read:kv/team/db2', false],
  ['read:kv/team/db', 'read:kv/team/', false],
  ['read:kv/team/*', 'read:kv/team/db', true],
  ['read:kv/team/*', 'read:kv/team/a/b/c', true],
  ['read:kv/team/*', 'read:kv/team/', true],
  ['read:kv/team/*', 'read:kv/team', false],
  ['read:kv/team/*', 'read:kv/teammate/x', false],
  ['read:kv/team*', 'read:kv/teammate/x', true], // a prefix is a string prefix, not a folder
  ['read:kv/team/*', 'read:kv/team/sub/*', true],
  ['read:kv/team/sub/*', 'read:kv/team/*', false],
  ['read:kv/team/db', 'read:kv/team/*', false],
  ['read:kv/team/*', 'write:kv/team/db', false],
  ['read:kv/*', 'read:kv/team/db list:kv/', false],
  ['read:kv/* list:kv/', 'read:kv/team/db list:kv/', true],
  ['read:kv/a read:kv/b', 'read:kv/a read:kv/b', true],
  ['read:kv/a read:kv/b', 'read:kv/a read:kv/c', false],
  ['issue:pg-main/reader', 'issue:pg-main/reader', true],
  ['issue:pg-main/*', 'issue:pg-main/writer', true],
  ['delegate:sys/tasks/*', 'delegate:sys/tasks/tsk_x', true],
  ['admin:*', 'admin:sys/anything', true],
  ['admin:*', 'read:sys/anything', false],
  ['use:upstream/*', 'use:upstream/openai', true],
  ['use:upstream/openai', 'use:upstream/anthropic', false],
  // Every action the server knows, so a new one cannot be missing here (a token holding it would not verify).
  ...POLICY_ACTIONS.map((a): [string, string, boolean] => [`${a}:kv/x/*`, `${a}:kv/x/y`, true]),
  ['  read:kv/a \n\t list:kv/  ', 'list:kv/', true], // any whitespace separates
  ['read:KV/a', 'read:kv/a', false], // case-sensitive
];

/** Scopes the server refuses to parse; the SDK must refuse them too. */
const MALFORMED = [
  '',
  '   ',
  'read',
  'read:',
  'fly:kv/a',
  'READ:kv/a',
  'read:/kv/a',
  'read:kv//a',
  'read:kv/./a',
  'read:kv/../a',
  'read:kv/*/a',
  'read:*kv',
  'read:kv/a**',
  'read:kv/\u0000a',
  `read:${'a'.repeat(1025)}`,
  Array.from({ length: 65 }, (_, i) => `read:kv/${i}`).join(' '),
];

const serverParses = (text: string) => {
  try {
    return serverParse(text);
  } catch {
    return undefined;
  }
};

describe('task scopes: the SDK reads them exactly as the server does', () => {
  it.each(COVERS)('held %j, required %j → %s', (held, required, covered) => {
    const sdk = scopeCovers(parseScope(held)!, parseScope(required)!);
    const server = isScopeSubset(serverParse(required), serverParse(held));
    expect(sdk).toBe(covered);
    expect(server).toBe(covered);
    // For one exact path, the server's own per-request check agrees too.
    const single = serverParse(required);
    if (single.length === 1 && !single[0]!.prefix) {
      expect(scopeAllows(serverParse(held), single[0]!.action as PolicyAction, single[0]!.path)).toBe(covered);
    }
  });

  it.each(MALFORMED.map((m) => [m]))('refuses %j as the server does', (text) => {
    expect(serverParses(text)).toBeUndefined();
    expect(parseScope(text)).toBeUndefined();
  });

  it('parses every well-formed entry to the same action, path and prefix', () => {
    for (const [held, required] of COVERS) {
      for (const text of [held, required]) {
        const server = serverParse(text).map((e) => `${e.action} ${e.path} ${e.prefix}`);
        // The server drops duplicates; the SDK need not (they change no answer).
        const sdk = [...new Set(parseScope(text)!.map((e) => `${e.action} ${e.path} ${e.prefix}`))];
        expect(sdk).toEqual(server);
      }
    }
  });
});
