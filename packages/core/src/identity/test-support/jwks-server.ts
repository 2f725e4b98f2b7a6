import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** A real HTTP JWKS endpoint on 127.0.0.1 whose key set a test can change. */
export interface JwksServer {
  url: string;
  /** How many JWKS requests the server has answered. */
  readonly hits: number;
  setKeys(keys: JWK[]): void;
  /** Makes the server answer 500 (issuer outage). */
  setFailing(failing: boolean): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let current = keys;
  let failing = false;
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    if (failing || req.url !== '/jwks.json') {
      res.writeHead(failing ? 500 : 404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: current }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    get hits() {
      return hits;
    },
    setKeys: (k) => {
      current = k;
    },
    setFailing: (f) => {
      failing = f;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
