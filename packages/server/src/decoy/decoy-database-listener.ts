import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { CustosNode } from '@custos/core';
import type { Logger } from 'pino';

/** Per connection: the bytes a client may send before it is cut (a startup and a password message are small). */
const MAX_BYTES = 8 * 1024;
/** Per connection: how long a client has to send its startup and password. */
const DEADLINE_MS = 10_000;
/** Connections held at once; beyond, new ones are closed by the kernel's listener before custos reads a byte. */
const MAX_CONNECTIONS = 64;
// PostgreSQL protocol constants (https://www.postgresql.org/docs/current/protocol-message-formats.html).
const PROTOCOL_3 = 196_608;
const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;
const CANCEL_REQUEST = 80_877_102;

/** The decoy database endpoint, listening. */
export interface DecoyDatabaseListener {
  readonly server: Server;
  /** `HOST:PORT`, to point `db-url` honeytokens at (`custos honeytoken create … --kind db-url --host …`). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * A PostgreSQL endpoint that exists only to be found: the host a `db-url`
 * honeytoken points at. No legitimate workload has its address — only the
 * decoy's URL does — so **every** login attempt on it is a touch of a
 * honeytoken: custos speaks just enough of the protocol to learn the user
 * name and the password offered (as a `psql`, a driver or an attacker's
 * script sends them), records the attempt in the audit trail (the password
 * only as its audit HMAC, as every refused credential is), where the
 * `honeytoken` rule raises a critical finding, and answers what a real
 * server answers to a wrong password (SQLSTATE 28P01). Nothing is ever
 * authenticated, and no query is ever read.
 *
 * Why a listener of custos rather than a decoy user in a real database: a
 * login attempt to a real database is seen only in that database's own log,
 * which custos does not read; here custos is the database the decoy names.
 *
 * Abuse: each connection may send at most 8 KiB within 10 s, and at most 64
 * are held at once (beyond, a connection is closed at once). TLS is
 * declined (`N`), as a server without TLS does, so the password arrives in
 * the clear to this one listener — it is a decoy's password, worthless by
 * design. Attempts are audited one per connection; the rule's own cooldown
 * and budget keep a flood from flooding the alerts.
 */
export async function startDecoyDatabaseListener(options: {
  node: CustosNode;
  host: string;
  port: number;
  logger: Logger;
}): Promise<DecoyDatabaseListener> {
  // Held so that closing custos does not wait out a client's deadline.
  const sockets = new Set<Socket>();
  const server = createServer({ pauseOnConnect: false }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serve(options, socket);
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    server,
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** What one connection said before it was refused. */
interface Attempt {
  user?: string;
  database?: string;
  password?: string;
}

function serve(options: { node: CustosNode; logger: Logger }, socket: Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const deadline = setTimeout(() => finish('timeout'), DEADLINE_MS);
  let buffer = Buffer.alloc(0);
  let received = 0;
  let started = false;
  let done = false;
  const attempt: Attempt = {};

  const finish = (outcome: 'password' | 'timeout' | 'malformed' | 'closed') => {
    if (done) return;
    done = true;
    clearTimeout(deadline);
    if (outcome === 'password') {
      const user = attempt.user ?? '';
      socket.end(errorResponse('28P01', `password authentication failed for user "${user.slice(0, 63)}"`));
    } else if (outcome === 'malformed') {
      socket.end(errorResponse('08P01', 'invalid startup packet layout'));
    } else {
      socket.destroy();
    }
    // A connection that said nothing (a port scan) names no credential, but it found the decoy's host.
    void record(options, socket, attempt, outcome);
  };

  socket.on('close', () => finish('closed'));
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    received += chunk.length;
    if (received > MAX_BYTES) return finish('malformed');
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (!started) {
        // Untyped startup-phase message: Int32 length (itself included), Int32 code, body.
        if (buffer.length < 8) return;
        const length = buffer.readInt32BE(0);
        if (length < 8 || length > MAX_BYTES) return finish('malformed');
        if (buffer.length < length) return;
        const code = buffer.readInt32BE(4);
        const body = buffer.subarray(8, length);
        buffer = buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          socket.write('N');
          continue;
        }
        if (code === CANCEL_REQUEST || code !== PROTOCOL_3) return finish('malformed');
        const params = startupParameters(body);
        attempt.user = params.get('user');
        attempt.database = params.get('database');
        started = true;
        // AuthenticationCleartextPassword: what makes every client send the password as typed.
        socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
        continue;
      }
      // Typed message: Byte1 type, Int32 length (itself included), body.
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (length < 4 || length > MAX_BYTES) return finish('malformed');
      if (buffer.length < 1 + length) return;
      if (buffer[0] !== 0x70) return finish('malformed');
      const body = buffer.subarray(5, 1 + length);
      const end = body.indexOf(0);
      attempt.password = body.subarray(0, end < 0 ? body.length : end).toString('utf8');
      return finish('password');
    }
  });
}

/** The StartupMessage's NUL-terminated name/value pairs. */
function startupParameters(body: Buffer): Map<string, string> {
  const parts = body.toString('utf8').split('\0');
  const params = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) params.set(parts[i]!, parts[i + 1]!);
  return params;
}

/** An ErrorResponse ('E'): severity FATAL, the SQLSTATE and the message, as PostgreSQL sends them. */
function errorResponse(sqlstate: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${sqlstate}\0M${message}\0\0`, 'utf8');
  const head = Buffer.alloc(5);
  head[0] = 0x45;
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}

/**
 * The attempt, in the audit trail: where it came from, the user and
 * database it named (decoy names, not secrets: cut and stripped of control
 * characters) and the password as its audit HMAC — never the value.
 */
async function record(
  options: { node: CustosNode; logger: Logger },
  socket: Socket,
  attempt: Attempt,
  outcome: string,
): Promise<void> {
  const { node, logger } = options;
  if (node.sealed) return;
  const services = node.services();
  const clean = (value: string | undefined) =>
    value === undefined ? undefined : value.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
  const user = clean(attempt.user);
  const database = clean(attempt.database);
  try {
    await services.audit.record({
      type: 'request',
      request_id: randomUUID(),
      auth: {},
      request: { method: 'LOGIN', route: 'decoy:postgres', source_ip: socket.remoteAddress ?? '' },
      decision: 'deny',
      status: 401,
      error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
      reason: 'honeytoken_database_login',
      details: {
        phase: 'response',
        decoy: 'postgres',
        outcome,
        ...(user !== undefined ? { database_user: user } : {}),
        ...(database !== undefined ? { database_name: database } : {}),
      },
      ...(attempt.password !== undefined ? { data: { credential: services.auditHmac(attempt.password) } } : {}),
    });
  } catch (error) {
    logger.error({ code: 'CUSTOS_ERR_AUDIT_UNAVAILABLE', err: error }, 'decoy database: login attempt not audited');
  }
}
