import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/cli-io.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, resolveRequestTimeout } from '../src/request-timeout.js';
import { type CliRun, runCliCaptured } from './cli-harness.js';

// Servers that never answer, as real TCP listeners: the CLI must give up
// after its timeout with CUSTOS_ERR_TIMEOUT and exit 3, never wait for ever.
// Every wait here is bounded by the timeout under test (1 s) plus vitest's.

const cli = (args: string[], env: Record<string, string>): Promise<CliRun> =>
  runCliCaptured(args, { cwd: tmpdir(), env: { CUSTOS_TOKEN: 'fake-token-for-timeout-tests', ...env } });

/** A listener that runs `onConnection` for each socket; closed, with its sockets, after the suite. */
async function listen(onConnection: (socket: Socket) => void): Promise<{ addr: string; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ server, sockets });
  const { port } = server.address() as { port: number };
  return { addr: `http://127.0.0.1:${port}`, port };
}
const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];

const expectTimeout = (run: CliRun, addr: string, after: string) => {
  expect(run.code).toBe(EXIT.timeout);
  expect(run.code).toBe(3);
  expect(run.stderr).toBe(
    `custos: CUSTOS_ERR_TIMEOUT no answer from ${addr} within ${after}; wait longer with --timeout (e.g. --timeout 2m) or CUSTOS_TIMEOUT, 0 for no limit\n`,
  );
};

describe('the CLI gives up on a server that does not answer', () => {
  let hold: { addr: string; port: number };
  const dir = mkdtempSync(join(tmpdir(), 'custos-timeout-'));

  beforeAll(async () => {
    // Accepts the connection, reads the request, never answers.
    hold = await listen((socket) => socket.resume());
  });
  afterAll(async () => {
    for (const { server, sockets } of servers) {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('--timeout: an accepted connection with no answer ends in CUSTOS_ERR_TIMEOUT, exit 3', async () => {
    const run = await cli(['--timeout', '1s', 'secret', 'get', 'kv/x'], { CUSTOS_ADDR: hold.addr });
    expectTimeout(run, hold.addr, '1s');
  });

  it('CUSTOS_TIMEOUT sets it too, and --timeout wins over it', async () => {
    expectTimeout(await cli(['secret', 'list'], { CUSTOS_ADDR: hold.addr, CUSTOS_TIMEOUT: '1s' }), hold.addr, '1s');
    const run = await cli(['--timeout', '1500ms', 'secret', 'list'], { CUSTOS_ADDR: hold.addr, CUSTOS_TIMEOUT: '10m' });
    expectTimeout(run, hold.addr, '1500ms');
  });

  it('a server that answers the status and then stalls the body is timed out too (the whole exchange is bounded)', async () => {
    const stall = await listen((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"data":');
      });
    });
    expectTimeout(
      await cli(['--timeout', '1s', 'secret', 'get', 'kv/x'], { CUSTOS_ADDR: stall.addr }),
      stall.addr,
      '1s',
    );
  });

  it('a server that never accepts (its accept queue full, its process frozen) ends the same way', async () => {
    // A listener with a backlog of 1 whose event loop is blocked: the kernel
    // queues one or two handshakes, then drops the rest; nobody ever accepts.
    const frozen: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
           process.stdout.write(String(s.address().port) + '\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      const port = await new Promise<number>((resolve) =>
        frozen.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
      );
      const fillers = Array.from({ length: 4 }, () => createConnection(port, '127.0.0.1').on('error', () => undefined));
      try {
        const addr = `http://127.0.0.1:${port}`;
        expectTimeout(await cli(['--timeout', '1s', 'secret', 'list'], { CUSTOS_ADDR: addr }), addr, '1s');
      } finally {
        for (const f of fillers) f.destroy();
      }
    } finally {
      frozen.kill('SIGKILL');
    }
  });

  it('OAuth calls (token introspect), scan --against-vault and login --cert are bounded too', async () => {
    const introspect = await cli(['--timeout', '1s', 'token', 'introspect', 'fake-token'], { CUSTOS_ADDR: hold.addr });
    expectTimeout(introspect, hold.addr, '1s');

    writeFileSync(join(dir, 'clean.txt'), 'nothing to see\n');
    const scan = await cli(['--timeout', '1s', 'scan', join(dir, 'clean.txt'), '--against-vault'], {
      CUSTOS_ADDR: hold.addr,
    });
    expectTimeout(scan, hold.addr, '1s');

    // The TLS handshake itself never completes: the listener is plain TCP and silent.
    const ca = await CertificateAuthority.create({ trustDomain: 'timeout.test' });
    const issued = await ca.issueClientCertificate({ role: 'agent', id: 'a1', ttlMs: 3_600_000 });
    writeFileSync(join(dir, 'agent.crt'), issued.certPem);
    writeFileSync(join(dir, 'agent.key'), issued.keyPem!, { mode: 0o600 });
    const tlsAddr = `https://127.0.0.1:${hold.port}`;
    const login = await cli(
      ['--timeout', '1s', 'login', '--cert', join(dir, 'agent.crt'), '--key', join(dir, 'agent.key')],
      { CUSTOS_TLS_ADDR: tlsAddr },
    );
    expectTimeout(login, tlsAddr, '1s');
  });

  it('a stream (audit export) is bounded in its first answer only: a long, slow stream is not cut off', async () => {
    const lines = Array.from({ length: 5 }, (_, i) => `{"kind":"record","seq":${i + 1}}\n`);
    const slow = await listen((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n');
        // 5 chunks 400 ms apart: the stream outlasts the 1 s timeout twice over.
        let i = 0;
        const next = () => {
          if (i === lines.length) {
            socket.end('0\r\n\r\n');
            return;
          }
          const chunk = lines[i++]!;
          socket.write(`${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`);
          setTimeout(next, 400);
        };
        next();
      });
    });
    const streamed = await cli(['--timeout', '1s', 'audit', 'export'], { CUSTOS_ADDR: slow.addr });
    expect(streamed).toMatchObject({ code: 0, stdout: lines.join(''), stderr: '' });
    // No first answer at all: timed out like any request.
    expectTimeout(await cli(['--timeout', '1s', 'audit', 'export'], { CUSTOS_ADDR: hold.addr }), hold.addr, '1s');
  });

  it('--timeout 0 waits as long as the server takes', async () => {
    const late = await listen((socket) => {
      socket.once('data', () => {
        setTimeout(() => {
          const body = '{"keys":["a"]}';
          socket.end(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
          );
        }, 1_200);
      });
    });
    const run = await cli(['--timeout', '0', 'secret', 'list'], { CUSTOS_ADDR: late.addr, CUSTOS_TIMEOUT: '1s' });
    expect(run).toMatchObject({ code: 0, stdout: 'a\n' });
  });

  it('a bad value is a usage error naming where it came from (exit 2)', async () => {
    const flag = await cli(['--timeout', 'soon', 'secret', 'list'], { CUSTOS_ADDR: hold.addr });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^custos: CUSTOS_ERR_USAGE --timeout is a duration such as 10s.*got "soon"\n$/);
    const env = await cli(['secret', 'list'], { CUSTOS_ADDR: hold.addr, CUSTOS_TIMEOUT: '-5s' });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/^custos: CUSTOS_ERR_USAGE CUSTOS_TIMEOUT is a duration/);
    const huge = await cli(['--timeout', '30d', 'secret', 'list'], { CUSTOS_ADDR: hold.addr });
    expect(huge.code).toBe(2);
  });

  it('defaults to 30 s', () => {
    expect(DEFAULT_REQUEST_TIMEOUT_MS).toBe(30_000);
    expect(resolveRequestTimeout({ env: {} })).toBe(30_000);
    expect(resolveRequestTimeout({ env: { CUSTOS_TIMEOUT: '2m' } })).toBe(120_000);
    expect(resolveRequestTimeout({ env: { CUSTOS_TIMEOUT: '2m' }, requestTimeout: '10' })).toBe(10_000);
  });
});
