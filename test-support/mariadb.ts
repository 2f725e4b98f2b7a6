import { connect } from 'node:net';

/** Where the test MariaDB is expected (the machine's server; root, no password). */
export const TEST_MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '' } as const;

/**
 * True when a MySQL-protocol server answers at host:port: it must send its
 * initial handshake (protocol version 10) within `timeoutMs`. Checks reachability
 * only; the client library is left to the tests that use it.
 */
export function mariadbReachable(
  host: string = TEST_MARIADB.host,
  port: number = TEST_MARIADB.port,
  timeoutMs = 2000,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    // Packet: 3-byte length, 1-byte sequence, then the protocol version byte.
    socket.once('data', (chunk: Buffer) => done(chunk.length > 4 && chunk[4] === 10));
  });
}

/**
 * For `describe.skipIf(!(await hasMariadb()))`: true when MariaDB is reachable;
 * otherwise warns loudly, and with CI=true throws (CI skips nothing).
 */
export async function hasMariadb(): Promise<boolean> {
  if (await mariadbReachable()) return true;
  const reason = `no MariaDB at ${TEST_MARIADB.host}:${TEST_MARIADB.port}`;
  if (process.env.CI === 'true') throw new Error(`MariaDB is required in CI: ${reason}`);
  console.warn(`[custos test-support] SKIPPING MariaDB tests: ${reason}`);
  return false;
}
