import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Custos, verifyTaskToken } from '../src/index.js';
import {
  bootstrapToken,
  fakeSecret,
  type ListeningServer,
  setUpAgentRole,
  startCountingRelay,
  startListeningServer,
} from './sdk-test-server.js';

describe('DPoP-bound tasks: the SDK holds the key and proves it on every request', () => {
  let s: ListeningServer;
  let custos: Custos;
  const secret = fakeSecret('bound');

  beforeAll(async () => {
    s = await startListeningServer();
    await setUpAgentRole(s, 'bound-agent', { require_dpop: true });
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/team/db', payload: { data: { password: secret } } });
    custos = new Custos({ address: s.address });
  });
  afterAll(async () => {
    s?.app.server.closeAllConnections(); // see rotation-events.test.ts
    await s?.close();
  });

  it('a role that requires DPoP refuses a login without it, with the server’s code', async () => {
    const refused = await custos.loginWithBootstrap(await bootstrapToken(s, 'bound-agent')).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'CUSTOS_ERR_DPOP_REQUIRED', status: 401 });
  });

  it('withTask({ dpop: true }) reads, delegates a child bound to its own key, listens, and ends the tree', async () => {
    let parentId = '';
    let childId = '';
    await custos.withTask({ bootstrap: await bootstrapToken(s, 'bound-agent'), dpop: true }, async (task) => {
      parentId = task.id;
      expect(task.dpopJkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
      // The server's issuer is not the address dialled here: the proofs name the issuer's URLs, as it checks.
      expect(s.node.services().issuer).not.toBe(s.address);
      expect((await task.readSecret('kv/team/db')).data.password).toBe(secret);
      // The token alone is worthless: as Bearer, or as DPoP without a proof.
      for (const authorization of [`Bearer ${task.token}`, `DPoP ${task.token}`]) {
        const stolen = await fetch(`${s.address}/v1/secrets/data/kv/team/db`, { headers: { authorization } });
        expect(stolen.status).toBe(401);
      }
      const subscription = task.onRotation(() => undefined);
      await subscription.ready;
      await task.withChild({ scope: 'read:kv/team/db', ttl: '1m' }, async (child) => {
        childId = child.id;
        expect(child.dpopJkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(child.dpopJkt).not.toBe(task.dpopJkt);
        expect((await child.readSecret('kv/team/db')).data.password).toBe(secret);
        // A tool verifying offline accepts the child's token only with the child's verified proof key.
        const issuer = s.node.services().issuer;
        const jwksUrl = `${s.address}/.well-known/jwks.json`;
        await expect(verifyTaskToken(child.token, { issuer, jwksUrl })).rejects.toMatchObject({
          reason: 'dpop_proof_required',
        });
        const verified = await verifyTaskToken(child.token, { issuer, jwksUrl, dpopJkt: child.dpopJkt! });
        expect(verified.cnf?.jkt).toBe(child.dpopJkt);
      });
    });
    for (const id of [childId, parentId]) {
      expect((await s.call({ method: 'GET', url: `/v1/tasks/${id}` })).json().state).toBe('ended');
    }
  });

  it('a retried read carries a fresh proof (a proof is single-use)', async () => {
    let reads = 0;
    const relay = await startCountingRelay(s.address, async (request) => {
      if (!request.url?.startsWith('/v1/secrets/data/')) return;
      reads++;
      if (reads === 1) await s.node.seal();
      if (reads === 2) await s.node.start();
    });
    // A second relay in front records the DPoP header of each attempt as the SDK sent it.
    const proofs: string[] = [];
    const watcher = await startCountingRelay(relay.address, (request) => {
      if (request.url?.startsWith('/v1/secrets/data/')) proofs.push(String(request.headers.dpop));
    });
    const watched = new Custos({ address: watcher.address, retryBaseDelayMs: 20 });
    try {
      const task = await watched.loginWithBootstrap(await bootstrapToken(s, 'bound-agent'), { dpop: true });
      expect((await task.readSecret('kv/team/db')).data.password).toBe(secret);
      expect(proofs).toHaveLength(2);
      expect(new Set(proofs).size).toBe(2);
      await task.end();
    } finally {
      if (s.node.sealed) await s.node.start();
      await watcher.close();
      await relay.close();
    }
  });
});
