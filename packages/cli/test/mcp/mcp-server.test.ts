import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpFixture, type ToolResult } from './mcp-harness.js';

// `custos mcp` driven by the MCP SDK's own client over real stdio, against a
// real custos, its credential proxy and a fake upstream that echoes the
// credential back. Every result is checked whole for the task token and the
// upstream key: neither may ever reach the model.

describe('custos mcp', () => {
  let f: Awaited<ReturnType<typeof startMcpFixture>>;
  beforeAll(async () => {
    f = await startMcpFixture();
  }, 60_000);
  afterAll(async () => {
    await f?.close();
  });

  /** Every result of a session, to assert on all of them at the end of a case. */
  const neverLeaks = (results: ToolResult[], tokens: string[]) => {
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.raw).not.toContain(f.key);
      for (const token of tokens) expect(r.raw).not.toContain(token);
    }
  };

  it('lists its tools; whoami shows the task, its scope and expiry, never the token', async () => {
    const { token, taskId } = await f.task();
    const { client, call } = await f.connect(token);
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(tools).toEqual(['call_upstream', 'delegate', 'list_upstreams', 'request_access', 'whoami']);
    const me = await call('whoami');
    expect(me.isError).toBe(false);
    const view = JSON.parse(me.text) as Record<string, unknown>;
    expect(view).toMatchObject({ task_id: taskId, role: 'mcp-agent', depth: 0 });
    expect(String(view.scope).split(' ').sort()).toEqual(
      ['delegate:sys/tasks/*', 'use:upstream/fake', 'use:upstream/other'].sort(),
    );
    expect(Date.parse(String(view.expire_time))).toBeGreaterThan(Date.now());
    const upstreams = await call('list_upstreams');
    expect(upstreams.isError).toBe(false);
    const listed = JSON.parse(upstreams.text) as { upstreams: Array<{ name: string; base_url: string }> };
    expect(listed.upstreams.map((u) => u.name).sort()).toEqual(['fake', 'other']);
    expect(listed.upstreams[0]?.base_url).toBe(`${f.h.server.proxy!.address}/u/${listed.upstreams[0]?.name}`);
    neverLeaks([me, upstreams], [token]);
  });

  it('call_upstream reaches the upstream with the key attached, and the model sees it redacted', async () => {
    const { token } = await f.task();
    const { call } = await f.connect(token);
    const r = await call('call_upstream', {
      upstream: 'fake',
      method: 'POST',
      path: '/chat/completions?model=x',
      body: '{"prompt":"hi"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.isError).toBe(false);
    const result = JSON.parse(r.text) as { status: number; headers: Record<string, string>; body: string };
    expect(result.status).toBe(200);
    // The type and custos's request id (for the audit trail); no cookie, no framing.
    expect(Object.keys(result.headers).sort()).toEqual(['content-type', 'x-custos-request-id']);
    const echoed = JSON.parse(result.body) as { url: string; you_sent: string; body: string };
    expect(echoed.url).toBe('/v1/chat/completions?model=x');
    expect(echoed.body).toBe('{"prompt":"hi"}');
    expect(echoed.you_sent).toBe('Bearer [REDACTED:upstream:fake]');
    // The upstream got the real key, and never the task token.
    expect(f.seen.at(-1)?.authorization).toBe(`Bearer ${f.key}`);
    expect(JSON.stringify(f.seen)).not.toContain(token);
    neverLeaks([r], [token]);
  });

  it('delegate returns a handle, not a token; calls with it are bounded by the narrower scope', async () => {
    const { token, taskId } = await f.task();
    const { call } = await f.connect(token);
    const d = await call('delegate', { scope: 'use:upstream/fake', ttl: '2m' });
    expect(d.isError).toBe(false);
    const child = JSON.parse(d.text) as { handle: string; task_id: string; scope: string; parent_task_id: string };
    expect(child.handle).toMatch(/^hdl_[A-Za-z0-9_-]{22}$/);
    expect(child).toMatchObject({ scope: 'use:upstream/fake', parent_task_id: taskId });
    expect(child.task_id).not.toBe(taskId);
    const who = await call('whoami', { handle: child.handle });
    expect(JSON.parse(who.text)).toMatchObject({ task_id: child.task_id, parent_task_id: taskId, depth: 1 });
    const inside = await call('call_upstream', {
      upstream: 'fake',
      method: 'GET',
      path: '/models',
      handle: child.handle,
    });
    expect(inside.isError).toBe(false);
    expect(JSON.parse(inside.text).status).toBe(200);
    const outside = await call('call_upstream', {
      upstream: 'other',
      method: 'GET',
      path: '/models',
      handle: child.handle,
    });
    // The proxy refuses: `use` on upstream/other is outside the child's scope — a tool error with custos's code.
    expect(outside.isError).toBe(true);
    expect(outside.text).toMatch(/^CUSTOS_ERR_PERMISSION_DENIED: /);
    // The parent still may.
    const parent = await call('call_upstream', { upstream: 'other', method: 'GET', path: '/models' });
    expect(JSON.parse(parent.text).status).toBe(200);
    // A child cannot widen itself.
    const wider = await call('delegate', { scope: 'use:upstream/other', handle: child.handle });
    expect(wider.isError).toBe(true);
    expect(wider.text).toMatch(/^CUSTOS_ERR_/);
    neverLeaks([d, who, inside, outside, parent, wider], [token]);
  });

  it('after the task is revoked every tool is refused, its children’s too', async () => {
    const { token, taskId } = await f.task();
    const { call } = await f.connect(token);
    const d = await call('delegate', { scope: 'use:upstream/fake', ttl: '2m' });
    const { handle } = JSON.parse(d.text) as { handle: string };
    expect((await call('whoami')).isError).toBe(false);
    await f.ok(['task', 'revoke', taskId]);
    const results = [
      await call('whoami'),
      await call('list_upstreams'),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/models' }),
      await call('delegate', { scope: 'use:upstream/fake' }),
      await call('whoami', { handle }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/models', handle }),
    ];
    for (const r of results) {
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^CUSTOS_ERR_UNAUTHENTICATED: /);
    }
    neverLeaks([d, ...results], [token]);
  });

  it('ends the children it delegated when the host closes it; the task itself lives on', async () => {
    const { token, taskId } = await f.task();
    const { client, call } = await f.connect(token);
    const { task_id: childId } = JSON.parse((await call('delegate', { scope: 'use:upstream/fake' })).text) as {
      task_id: string;
    };
    const state = async (id: string) =>
      (JSON.parse(await f.ok(['task', 'show', id, '--json'])) as { state: string }).state;
    expect(await state(childId)).toBe('active');
    await client.close(); // closes the server's stdin, as a host does
    // The process ends its children on its way out; wait for it (bounded), not for a time.
    for (let i = 0; i < 50 && (await state(childId)) === 'active'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await state(childId)).toBe('ended');
    expect(await state(taskId)).toBe('active');
  });

  it('request_access files a request for the task; with wait it returns the human’s decision, never a token', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const approverPolicy = join(f.h.dir, 'approver.cedar');
    writeFileSync(
      approverPolicy,
      'permit(principal, action in [Custos::Action::"approve", Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/requests/");\n',
    );
    await f.ok(['policy', 'write', 'mcp-approver', approverPolicy]);
    await f.ok([
      'role',
      'write',
      'mcp-agent',
      '--policy',
      'use-upstreams',
      '--max-ttl',
      '10m',
      '--request-scope',
      'read:kv/llm/*',
    ]);
    const approver = (
      JSON.parse(await f.ok(['token', 'create', '--policy', 'mcp-approver', '--ttl', '10m', '--json'])) as {
        token: string;
      }
    ).token;
    const { token, taskId } = await f.task();
    const { call } = await f.connect(token);

    const filed = await call('request_access', { scope: 'read:kv/llm/fake', reason: 'need the model key', ttl: '2m' });
    expect(filed.isError, filed.text).toBe(false);
    const pending = JSON.parse(filed.text) as { id: string; status: string; task_id: string };
    expect(pending).toMatchObject({ status: 'pending', task_id: taskId });

    // A second call waits; an approver decides meanwhile.
    const waiting = call('request_access', { scope: 'read:kv/llm/fake', reason: 'need the model key', wait: '30s' });
    await new Promise((r) => setTimeout(r, 300));
    const approved = await f.h.cli(['request', 'approve', pending.id], { token: approver });
    expect(approved.code, approved.stderr).toBe(0);
    const decided = await waiting;
    expect(decided.isError, decided.text).toBe(false);
    expect(JSON.parse(decided.text)).toMatchObject({ id: pending.id, status: 'approved' });

    const bad = await call('request_access', { scope: 'read:kv/other/x', reason: 'r' });
    expect(bad.isError).toBe(true);
    expect(bad.text).toMatch(/^CUSTOS_ERR_REQUEST_NOT_REQUESTABLE: /);
    const noReason = await call('request_access', { scope: 'read:kv/llm/fake' });
    expect(noReason.text).toMatch(/^CUSTOS_ERR_VALIDATION: reason: required/);
    neverLeaks([filed, decided, bad, noReason], [token, approver]);
  });
});
