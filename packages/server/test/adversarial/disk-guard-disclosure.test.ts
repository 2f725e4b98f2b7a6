import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskGuard } from '../../src/disk-guard.js';
import { startTestServer, type TestServer } from '../test-server.js';

// Attack class: learning how busy a node is, and when it will start refusing
// requests, from its disk figures. Free space, size and audit growth are for
// operators granted `read sys/disk`; public health says only `disk_low`;
// nothing names a path.

const HEALTH_FIELDS = ['degraded', 'initialized', 'problems', 'sealed', 'version'];

describe('disk guard figures are for operators only', () => {
  let s: TestServer;
  let plain: TestServer;
  let guard: DiskGuard;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const operatorToken = async (policy: string) =>
    (
      await ok(
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [policy], ttl: '10m' } }),
      )
    ).token as string;

  beforeAll(async () => {
    s = await startTestServer('sqlite', {
      // The real filesystem under the node's directory, with a threshold it is always below: low.
      diskGuard: (dir, node) =>
        (guard = new DiskGuard({
          dir,
          warnFreeBytes: Number.MAX_SAFE_INTEGER,
          checkEveryMs: 60_000,
          windowMs: 300_000,
          action: 'rotate-and-warn',
          auditBytes: () => (node.sealed ? undefined : node.services().auditFile?.bytesWritten),
          rotateAudit: () => node.services().auditFile?.rotateSoon(),
          log: { warn: () => undefined, info: () => undefined },
        })),
    });
    await guard.check();
    plain = await startTestServer('sqlite');
    const READ_DISK = 'permit(principal, action == Custos::Action::"read", resource == Custos::Path::"sys/disk");';
    const ALL_SYS = 'permit(principal, action, resource in Custos::Path::"sys/");';
    for (const [name, text] of [
      ['read-disk', READ_DISK],
      ['all-sys', ALL_SYS],
      ['nothing', 'forbid(principal, action, resource);'],
    ] as const) {
      await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } }));
    }
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/snoop', payload: { policies: ['all-sys'], max_ttl: '15m' } }),
    );
  });
  afterAll(async () => {
    await s?.close();
    await plain?.close();
  });

  const hasNoFigures = (body: string) => {
    for (const field of ['free_bytes', 'total_bytes', 'free_percent', 'audit_growth', 'minutes_to_full']) {
      expect(body).not.toContain(field);
    }
    expect(body).not.toContain(s.dir);
  };

  it('public health says disk_low in a fixed word, with no figure and no path', async () => {
    const health = await s.call({ method: 'GET', url: '/v1/sys/health', token: null });
    expect(health.statusCode).toBe(200);
    expect(Object.keys(health.json()).sort()).toEqual(HEALTH_FIELDS);
    expect(health.json()).toMatchObject({ degraded: true, problems: ['disk_low'] });
    hasNoFigures(health.body);
  });

  it('without a token, with an operator token lacking read sys/disk, and as a task whatever its policies: refused, no figures', async () => {
    const anonymous = await s.call({ method: 'GET', url: '/v1/sys/disk', token: null });
    expect(anonymous.statusCode).toBe(401);
    hasNoFigures(anonymous.body);
    const stranger = await s.call({ method: 'GET', url: '/v1/sys/disk', token: await operatorToken('nothing') });
    expect(stranger.statusCode).toBe(403);
    hasNoFigures(stranger.body);
    const task = (await ok(await s.call({ method: 'POST', url: '/v1/roles/snoop/tasks', payload: { ttl: '10m' } })))
      .token as string;
    const asTask = await s.call({ method: 'GET', url: '/v1/sys/disk', token: task });
    expect(asTask.statusCode).toBe(403);
    hasNoFigures(asTask.body);
  });

  it('an operator granted read sys/disk gets the figures: counts only, never a path', async () => {
    const r = await s.call({ method: 'GET', url: '/v1/sys/disk', token: await operatorToken('read-disk') });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ low: true, action: 'rotate-and-warn' });
    expect(body.free_bytes).toBeGreaterThan(0);
    expect(body.total_bytes).toBeGreaterThanOrEqual(body.free_bytes);
    expect(Object.keys(body).every((k) => typeof body[k] !== 'string' || k === 'checked_at' || k === 'action')).toBe(
      true,
    );
    expect(r.body).not.toContain(s.dir);
  });

  it('a node without audit.disk_guard answers 404 even to root', async () => {
    const r = await plain.call({ method: 'GET', url: '/v1/sys/disk' });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('CUSTOS_ERR_NOT_FOUND');
  });
});
