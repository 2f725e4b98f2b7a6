import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cipher, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { CustosError } from '../errors/index.js';
import { EngineService } from '../leases/engine-service.js';
import type { StorageTx } from '../ports/storage.js';
import { SecretService } from '../secrets/secret-service.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { EventBus } from './event-bus.js';
import { RotationService } from './rotation-service.js';
import type { CustosEvent } from './rotation-types.js';

/** A pass-through cipher: these tests are about stages, not encryption (the barrier has its own tests). */
const plainCipher: Cipher = {
  sealed: false,
  encrypt: (_aad, plaintext) => plaintext.slice(),
  decrypt: (_aad, blob) => blob.slice(),
  decryptAsync: async (_aad, blob) => blob.slice(),
};

const fake = (label: string) => `fake-${label}-${Math.random().toString(36).slice(2)}`;

function setup(now = { ms: Date.now() }) {
  const entries = new MemoryEntryStore();
  const storage = { entries, transaction: <T>(fn: (tx: StorageTx) => Promise<T>) => fn({ entries } as StorageTx) };
  const secrets = new SecretService({ storage, cipher: plainCipher, now: () => new Date(now.ms) });
  const engines = new EngineService({ storage, cipher: plainCipher, factory: undefined });
  const events = new EventBus();
  const seen: CustosEvent[] = [];
  events.subscribe((e) => seen.push(e));
  // The webhook receivers of these tests listen on loopback: allowed explicitly, as an operator would.
  const egress = new EgressPolicy({ allow: ['127.0.0.1'] });
  const rotation = new RotationService({
    storage,
    cipher: plainCipher,
    secrets,
    engines,
    events,
    egress,
    now: () => now.ms,
  });
  return { entries, secrets, rotation, seen, now };
}

describe('RotationService and pinned reads', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r) ?? r(undefined));
    server = undefined;
  });

  it('a rotation is invisible to a pinned task tree and visible to new ones; ended trees release their pins', async () => {
    const { secrets, rotation, seen } = setup();
    const first = fake('v1');
    await secrets.put('kv/app/key', { value: first }, {}, 'op');
    expect((await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_a' } })).data.value).toBe(first);
    const result = await rotation.rotate('kv/app/key', 'op');
    expect(result).toEqual({ path: 'kv/app/key', version: 2, previous: 1 });
    expect(seen).toMatchObject([{ type: 'secret.rotated', path: 'kv/app/key', version: 2 }]);
    const second = (await secrets.get('kv/app/key')).data.value;
    expect(second).not.toBe(first);
    expect((await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_a' } })).data.value).toBe(first);
    expect((await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_b' } })).data.value).toBe(second);
    await secrets.releasePins(['tsk_a']);
    expect((await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_a' } })).data.value).toBe(second);
    expect((await secrets.readMetadata('kv/app/key')).stages).toMatchObject({ current: 2, previous: 1, pending: null });
  });

  it('previous is retired for pinned readers once the grace deadline passes', async () => {
    const { secrets, rotation, now } = setup();
    await secrets.put('kv/app/key', { value: fake('v1') }, {}, 'op');
    await rotation.configure('kv/app/key', { rotator: { type: 'random' }, grace_ms: 1_000 });
    const pinned = (await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_a' } })).metadata.version;
    await rotation.rotate('kv/app/key', 'op');
    expect((await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_a' } })).metadata.version).toBe(pinned);
    now.ms += 1_001;
    expect((await secrets.get('kv/app/key', undefined, { pin: { owner: 'tsk_a' } })).metadata.version).toBe(2);
  });

  it('a webhook rotator must acknowledge; a refusal leaves current untouched and says why', async () => {
    const { secrets, rotation, seen } = setup();
    const received: Array<{ path: string; version: number; field: string; value: string }> = [];
    let ack = true;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(ack ? 200 : 500, { 'content-type': 'application/json' }).end(JSON.stringify({ ack }));
      });
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rotate`;
    const first = fake('v1');
    await secrets.put('kv/hook/key', { value: first, user: 'svc' }, {}, 'op');
    await rotation.configure('kv/hook/key', { rotator: { type: 'webhook', url } });
    await rotation.rotate('kv/hook/key', 'op');
    const current = await secrets.get('kv/hook/key');
    // The rotated field's new value only: never the secret's other fields.
    expect(received[0]).toEqual({ path: 'kv/hook/key', version: 2, field: 'value', value: current.data.value });
    expect(current.data.user).toBe('svc');

    ack = false;
    const error = await rotation.rotate('kv/hook/key', 'op').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CustosError);
    expect((error as CustosError).code).toBe('CUSTOS_ERR_ROTATION_FAILED');
    expect((error as CustosError).message).not.toContain(received[1]?.value as string);
    expect((await secrets.get('kv/hook/key')).data).toEqual(current.data);
    const meta = await secrets.readMetadata('kv/hook/key');
    expect(meta.stages).toMatchObject({ current: 2, pending: null });
    expect(meta.versions[3]?.destroyed).toBe(true);
    expect((await rotation.read('kv/hook/key')).last_error).toBe('CUSTOS_ERR_ROTATION_FAILED');
    expect(seen).toHaveLength(1);
  });

  it('after a restart, a rotation that was not applied is rolled back and one that was is promoted', async () => {
    for (const phase of ['pending', 'applied'] as const) {
      const { entries, secrets, rotation } = setup();
      const path = `kv/restart/${phase}`;
      await secrets.put(path, { value: fake('v1') }, {}, 'op');
      const pending = await secrets.putPending(path, { value: fake('v2') }, 'op');
      // What a node that died mid-rotation leaves behind.
      await entries.put(
        'rotation.running',
        path,
        sealJson(plainCipher, 'rotation.running', path, { version: pending.version, phase }),
      );
      expect((await secrets.get(path)).metadata.version).toBe(1); // pending is not current
      expect(await rotation.resumeInterrupted()).toBe(1);
      const meta = await secrets.readMetadata(path);
      expect((await secrets.get(path)).metadata.version).toBe(phase === 'applied' ? 2 : 1);
      expect(meta.stages?.pending).toBeNull();
      expect(await entries.list('rotation.running', '')).toEqual([]);
    }
  });

  it('a second rotation of the same secret while one runs is refused', async () => {
    const { secrets, rotation, entries } = setup();
    await secrets.put('kv/busy/key', { value: fake('v1') }, {}, 'op');
    await entries.put('rotation.lock', 'kv/busy/key', new Uint8Array(0), { expiresAt: Date.now() + 60_000 });
    await expect(rotation.rotate('kv/busy/key', 'op')).rejects.toMatchObject({
      code: 'CUSTOS_ERR_ROTATION_IN_PROGRESS',
    });
  });

  it('runs scheduled rotations when due (--every or cron) and keeps the schedule going', async () => {
    const { secrets, rotation, now } = setup({ ms: Date.parse('2026-11-21T10:00:30Z') });
    await secrets.put('kv/sched/every', { value: fake('v1') }, {}, 'op');
    await secrets.put('kv/sched/cron', { value: fake('v1') }, {}, 'op');
    await rotation.configure('kv/sched/every', { rotator: { type: 'random' }, every_ms: 3_600_000 });
    const cron = await rotation.configure('kv/sched/cron', { rotator: { type: 'random' }, cron: '0 12 * * *' });
    expect(new Date(cron.next_at as number).toISOString()).toBe('2026-11-21T12:00:00.000Z');
    expect(await rotation.rotateDue()).toBe(0);
    now.ms = Date.parse('2026-11-21T11:00:31Z');
    expect(await rotation.rotateDue()).toBe(1);
    expect((await secrets.get('kv/sched/every')).metadata.version).toBe(2);
    expect((await secrets.get('kv/sched/cron')).metadata.version).toBe(1);
    now.ms = Date.parse('2026-11-21T12:00:00Z');
    expect(await rotation.rotateDue()).toBe(1);
    expect((await secrets.get('kv/sched/cron')).metadata.version).toBe(2);
    expect(new Date((await rotation.read('kv/sched/cron')).next_at as number).toISOString()).toBe(
      '2026-11-22T12:00:00.000Z',
    );
    await expect(
      rotation.configure('kv/sched/cron', { rotator: { type: 'random' }, cron: '0 12 * *' }),
    ).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
  });
});
