import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Custos,
  CustosApiError,
  CustosTimeoutError,
  CustosUnreachableError,
  CustosUsageError,
  type Task,
} from '../src/index.js';
import {
  bootstrapToken,
  fakeSecret,
  type ListeningServer,
  setUpAgentRole,
  startCountingRelay,
  startListeningServer,
} from './sdk-test-server.js';

describe('the SDK client against a real server', () => {
  let s: ListeningServer;
  let custos: Custos;
  const values = { v1: fakeSecret('v1'), v2: fakeSecret('v2'), other: fakeSecret('other') };
  const taskState = async (id: string) =>
    (await s.call({ method: 'GET', url: `/v1/tasks/${id}` })).json().state as string;

  beforeAll(async () => {
    s = await startListeningServer();
    await setUpAgentRole(s);
    for (const [path, value] of [
      ['kv/team/db', values.v1],
      ['kv/team/db', values.v2],
      ['kv/team/other', values.other],
    ] as const) {
      expect(
        (await s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data: { password: value } } }))
          .statusCode,
      ).toBe(200);
    }
    custos = new Custos({ address: s.address, timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a sub-agent adopts the token it was handed: the same task, live-checked, ended by withTask({ token })', async () => {
    await custos.withTask({ bootstrap: await bootstrapToken(s), ttl: '10m' }, async (parent) => {
      const handed = (await parent.delegate({ scope: 'read:kv/team/db', ttl: '2m' })).token;
      // What a sub-agent process does with CUSTOS_TOKEN: a fresh client, the token alone.
      const subAgent = new Custos({ address: s.address, timeoutMs: 10_000 });
      const adopted = await subAgent.adoptTask(handed);
      expect(adopted.scope).toBe('read:kv/team/db');
      expect(adopted.accessor).toMatch(/^tac_/);
      expect((await adopted.readSecret('kv/team/db')).data.password).toBe(values.v2);
      const done = await subAgent.withTask({ token: handed }, async (task) => {
        expect(task.id).toBe(adopted.id);
        return task.id;
      });
      expect(await taskState(done)).toBe('ended');
      // Ended: the token is refused when adopted again, with the server's code and nothing of the token.
      const dead = await subAgent.adoptTask(handed).catch((e: unknown) => e);
      expect(dead).toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED', status: 401 });
      expect(String((dead as Error).message)).not.toContain(handed);
      // Not a task token at all, or start options that a minted token cannot take: refused before anything is sent.
      await expect(subAgent.adoptTask('not-a-token')).rejects.toBeInstanceOf(CustosUsageError);
      await expect(subAgent.withTask({ token: handed, ttl: '1h' }, async () => 1)).rejects.toBeInstanceOf(
        CustosUsageError,
      );
      // A forged token naming a real task: the server checks the signature.
      const [h, , sig] = parent.token.split('.');
      const claims = JSON.parse(Buffer.from(parent.token.split('.')[1]!, 'base64url').toString());
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: '*' })).toString('base64url')}.${sig}`;
      await expect(subAgent.adoptTask(forged)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    });
  });

  it('withTask logs in with a bootstrap token, reads secrets and versions, delegates, and ends the task tree', async () => {
    let parentId = '';
    let childId = '';
    let childToken = '';
    const result = await custos.withTask({ bootstrap: await bootstrapToken(s), ttl: '10m' }, async (task) => {
      parentId = task.id;
      expect(task.id).toMatch(/^tsk_/);
      expect(await taskState(task.id)).toBe('active');
      const current = await task.readSecret('kv/team/db');
      expect(current).toMatchObject({ data: { password: values.v2 }, version: 2 });
      expect((await task.readSecret('kv/team/db', { version: 1 })).data.password).toBe(values.v1);
      const history = await task.secretVersions('kv/team/db');
      expect(history.currentVersion).toBe(2);
      expect(history.versions.map((v) => v.version)).toEqual([1, 2]);
      expect(JSON.stringify(history)).not.toContain(values.v1);

      return task.withChild({ scope: 'read:kv/team/db', ttl: '2m' }, async (child) => {
        childId = child.id;
        childToken = child.token;
        expect(child.scope).toBe('read:kv/team/db');
        expect((await child.readSecret('kv/team/db')).data.password).toBe(values.v2);
        // Outside the child's scope: the server's code and status, nothing of the token.
        const refused = await child.readSecret('kv/team/other').catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(CustosApiError);
        expect(refused).toMatchObject({ code: 'CUSTOS_ERR_PERMISSION_DENIED', status: 403 });
        expect(String((refused as Error).message)).not.toContain(child.token);
        return 'done';
      });
    });
    expect(result).toBe('done');
    expect(await taskState(childId)).toBe('ended');
    expect(await taskState(parentId)).toBe('ended');
    // The child's token is dead on the server.
    const late = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/team/db', token: childToken });
    expect(late.statusCode).toBe(401);
  });

  it('withTask revokes the task when the callback throws, and rethrows the callback’s error', async () => {
    let id = '';
    const failure = new Error('the agent failed');
    await expect(
      custos.withTask({ bootstrap: await bootstrapToken(s) }, async (task) => {
        id = task.id;
        await task.readSecret('kv/team/db');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await taskState(id)).toBe('revoked');
  });

  it('ending a task an ancestor already revoked counts as ended, not as a failure', async () => {
    await custos.withTask({ bootstrap: await bootstrapToken(s) }, async (parent) => {
      const child = await parent.delegate({ scope: 'read:kv/team/db', ttl: '1m' });
      await parent.revoke();
      await child.end();
      expect(child.over).toBe(true);
      expect(await taskState(child.id)).toBe('revoked');
      await expect(child.readSecret('kv/team/db')).rejects.toBeInstanceOf(CustosUsageError);
    });
  });

  it('delegation is the RFC 8693 exchange, form-encoded with subject_token_type; a wider scope is refused', async () => {
    const contentTypes: string[] = [];
    const relay = await startCountingRelay(s.address, (request) => {
      if (request.url === '/v1/oauth/token') contentTypes.push(String(request.headers['content-type']));
    });
    try {
      const viaRelay = new Custos({ address: relay.address });
      const scope = 'read:kv/team/db delegate:sys/tasks/*';
      await viaRelay.withTask({ bootstrap: await bootstrapToken(s), scope }, async (task) => {
        expect(task.scope).toBe(scope);
        const wider = await task.delegate({ scope: 'read:kv/team/*' }).catch((e: unknown) => e);
        // The token endpoint answers RFC 6749's invalid_scope (400), with the custos code beside it.
        expect(wider).toMatchObject({ code: 'CUSTOS_ERR_SCOPE_EXCEEDS_PARENT', status: 400 });
        expect(String((wider as Error).message)).not.toContain(task.token);
        const narrower = await task.delegate({ scope: 'read:kv/team/db', ttl: '1m' });
        expect(narrower.scope).toBe('read:kv/team/db');
        await narrower.end();
      });
      expect(contentTypes).toEqual(['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded']);
    } finally {
      await relay.close();
    }
  });

  it('a spent bootstrap token is refused with the server’s code, and the error never carries it', async () => {
    const token = await bootstrapToken(s);
    await custos.withTask({ bootstrap: token }, async () => undefined);
    const replay = await custos.loginWithBootstrap(token).catch((e: unknown) => e);
    expect(replay).toBeInstanceOf(CustosApiError);
    expect(replay).toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED', status: 401 });
    expect(`${(replay as Error).message} ${inspect(replay)}`).not.toContain(token);
  });

  it('neither a Task nor the client shows its token when logged', async () => {
    const operator = new Custos({ address: s.address, token: s.rootToken });
    expect(inspect(operator)).not.toContain(s.rootToken);
    expect(JSON.stringify(operator)).not.toContain(s.rootToken);
    await operator.withTask({ role: 'agent', ttl: '1m' }, async (task: Task) => {
      expect(inspect(task)).not.toContain(task.token);
      expect(JSON.stringify({ task })).not.toContain(task.token);
      expect(inspect(task)).toContain(task.id);
    });
  });

  it('an operator client starts and revokes tasks by id; without a token it refuses before sending', async () => {
    const operator = new Custos({ address: s.address, token: s.rootToken });
    const task = await operator.startTask('agent', { ttl: '1m', scope: 'read:kv/team/db' });
    expect(task.scope).toBe('read:kv/team/db');
    await operator.revokeTask(task.id);
    expect(await taskState(task.id)).toBe('revoked');
    await expect(custos.startTask('agent')).rejects.toBeInstanceOf(CustosUsageError);
  });

  it('retries a read after a 503 (sealed) with backoff and succeeds once the node is back', async () => {
    let reads = 0;
    const relay = await startCountingRelay(s.address, async (request) => {
      if (!request.url?.startsWith('/v1/secrets/data/')) return;
      reads++;
      if (reads === 1) await s.node.seal();
      if (reads === 3) await s.node.start(); // the dev seal unseals on start
    });
    const viaRelay = new Custos({ address: relay.address, retries: 4, retryBaseDelayMs: 20 });
    const task = await viaRelay.loginWithBootstrap(await bootstrapToken(s));
    try {
      const read = await task.readSecret('kv/team/db');
      expect(read.data.password).toBe(values.v2);
      expect(reads).toBe(3); // two 503s, then the answer
    } finally {
      if (s.node.sealed) await s.node.start();
      await task.end();
      await relay.close();
    }
  });

  it('never retries a 503 on a request that may have been executed (delegation), and bounds read retries', async () => {
    const relay = await startCountingRelay(s.address);
    const viaRelay = new Custos({ address: relay.address, retries: 2, retryBaseDelayMs: 10 });
    const task = await viaRelay.loginWithBootstrap(await bootstrapToken(s));
    try {
      await s.node.seal();
      const delegation = await task.delegate({ scope: 'read:kv/team/db' }).catch((e: unknown) => e);
      expect(delegation).toMatchObject({ code: 'CUSTOS_ERR_SEALED', status: 503 });
      expect(relay.requests.filter((r) => r === 'POST /v1/oauth/token')).toHaveLength(1);
      const read = await task.readSecret('kv/team/db').catch((e: unknown) => e);
      expect(read).toMatchObject({ code: 'CUSTOS_ERR_SEALED', status: 503 });
      expect(relay.requests.filter((r) => r.startsWith('GET /v1/secrets/data/'))).toHaveLength(3);
    } finally {
      if (s.node.sealed) await s.node.start();
      await task.end();
      await relay.close();
    }
  });

  it('scrubs the credentials it sent from an error message, should a server ever echo them', async () => {
    // A misbehaving server (not custos: custos never echoes a credential) that repeats the request in its error.
    const echo = createHttpServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        response.statusCode = 401;
        response.setHeader('content-type', 'application/json');
        const message = `refused ${request.headers.authorization ?? ''} ${body}`;
        response.end(JSON.stringify({ error: { code: 'CUSTOS_ERR_UNAUTHENTICATED', message } }));
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    try {
      const address = `http://127.0.0.1:${(echo.address() as { port: number }).port}`;
      const bootstrap = fakeSecret('bootstrap');
      const error = await new Custos({ address }).loginWithBootstrap(bootstrap).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED', status: 401 });
      expect((error as Error).message).toContain('[redacted]');
      expect((error as Error).message).not.toContain(bootstrap);
      const operatorToken = fakeSecret('operator');
      const started = await new Custos({ address, token: operatorToken }).startTask('agent').catch((e: unknown) => e);
      expect((started as Error).message).not.toContain(operatorToken);
    } finally {
      await new Promise<void>((resolve) => echo.close(() => resolve()));
    }
  });

  it('times out a server that never answers, and reports one that is not there', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const slow = new Custos({ address: `http://127.0.0.1:${port}`, timeoutMs: 200 });
      await expect(slow.loginWithBootstrap(fakeSecret())).rejects.toBeInstanceOf(CustosTimeoutError);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
    const gone = new Custos({ address: `http://127.0.0.1:${port}`, timeoutMs: 2_000 });
    const error = await gone.loginWithBootstrap(fakeSecret()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CustosUnreachableError);
    expect(error).toMatchObject({ code: 'CUSTOS_ERR_UNREACHABLE' });
  });
});
