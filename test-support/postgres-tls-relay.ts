import { connect, createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** A running relay: its port on 127.0.0.1, how many TLS sessions it carried, and how to stop it. */
export interface PostgresTlsRelay {
  readonly port: number;
  sessions(): number;
  close(): Promise<void>;
}

/**
 * A TLS-terminating relay in front of the test cluster (which has no TLS of
 * its own): it accepts PostgreSQL's SSLRequest, completes the handshake with
 * `key`/`cert` and then passes the decrypted protocol through to `target`.
 * An engine configured with `sslmode=verify-full` and its own CA therefore
 * talks to a real server over a verified TLS connection end to end. Anything
 * but an SSLRequest is hung up on, so a client that skipped TLS cannot
 * succeed through it by accident.
 */
export async function startPostgresTlsRelay(key: string, cert: string, target: URL): Promise<PostgresTlsRelay> {
  let sessions = 0;
  const server: Server = createServer((socket: Socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (request) => {
      // SSLRequest: length 8, code 80877103.
      if (request.length !== 8 || request.readInt32BE(4) !== 80_877_103) return socket.destroy();
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, key, cert });
      secure.once('secure', () => sessions++);
      const upstream = connect(Number(target.port || 5432), target.hostname);
      const closeBoth = (): void => {
        secure.destroy();
        upstream.destroy();
      };
      secure.on('error', closeBoth);
      upstream.on('error', closeBoth);
      secure.pipe(upstream).pipe(secure);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    sessions: () => sessions,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** `url` pointed at the relay on 127.0.0.1, with `query` as its parameters. */
export function throughRelay(url: string, relay: PostgresTlsRelay, query: string): string {
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String(relay.port);
  via.search = query;
  return via.toString();
}
