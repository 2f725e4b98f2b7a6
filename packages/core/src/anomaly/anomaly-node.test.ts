import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '@custos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import { CustosNode } from '../custos/custos-node.js';
import { deadTokenRequest } from '../test-support/anomaly-rig.js';

// The engine as a node wires it: fed by the node's audit log, its progress
// saved at shutdown and resumed at the next start, on a real SQLite file and
// a real PostgreSQL database.
const backends = ['sqlite', ...(hasPostgres() ? ['postgres'] : [])] as const;
let dir: string;
let database: TestDatabase | undefined;
let url: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-anomaly-node-'));
});
afterEach(async () => {
  await database?.drop();
  database = undefined;
  await rm(dir, { recursive: true, force: true });
});

const task = { id: 'tsk_node1', identity: 'spiffe://custos.local/agent/n', role: 'n' };

async function startNode(): Promise<CustosNode> {
  const node = new CustosNode({
    storage: createStorage(url),
    seal: { type: 'dev', keyFile: join(dir, 'dev-seal.key') },
  });
  await node.start();
  return node;
}

describe.each(backends)('the anomaly engine in a node (%s)', (backend) => {
  beforeEach(async () => {
    if (backend === 'postgres') {
      database = await createTestDatabase();
      url = database.url;
    } else url = `sqlite:${join(dir, 'custos.db')}`;
  });

  it('saves its progress at shutdown, so a restart neither re-raises nor misses anything', async () => {
    const first = await startNode();
    const record = await first.services().audit.record(deadTokenRequest(task, 'task_revoked'));
    await first.services().anomaly!.idle();
    expect((await first.services().alerts.list()).alerts).toHaveLength(1);
    await first.close();

    const second = await startNode();
    const services = second.services();
    expect(await services.alerts.readCursor()).toBeGreaterThanOrEqual(record.seq);
    await services.anomaly!.idle();
    // Nothing past the progress: nothing resumed, and the finding is still there, once.
    expect(services.anomaly!.stats().rules.find((r) => r.rule === 'dead-task-token')!.events).toBe(0);
    expect((await services.alerts.list()).alerts).toHaveLength(1);
    // Live events are judged with the baselines learned from history.
    await services.audit.record(deadTokenRequest({ ...task, id: 'tsk_node2' }, 'task_ended'));
    await services.anomaly!.idle();
    expect((await services.alerts.list()).alerts.map((a) => a.subject.task_id)).toEqual(['tsk_node2', 'tsk_node1']);
    await second.close();
  });

  it('can be turned off', async () => {
    const node = new CustosNode({
      storage: createStorage(url),
      seal: { type: 'dev', keyFile: join(dir, 'dev-seal.key') },
      anomaly: { enabled: false },
    });
    await node.start();
    expect(node.services().anomaly).toBeUndefined();
    await node.services().audit.record(deadTokenRequest(task, 'task_revoked'));
    expect((await node.services().alerts.list()).alerts).toEqual([]);
    await node.close();
  });
});
