import { Socket } from 'node:net';
import type { EgressPolicy } from './egress-policy.js';
import { parseIp } from './ip-address.js';

/**
 * A TCP socket whose `connect` obeys the egress policy, for drivers that
 * open their own sockets (database engines: `pg`'s and `mysql2`'s `stream`
 * option). Whatever host the driver parsed out of its URL or options — a
 * `host=` query parameter, a numeric form, a Unix socket path — the check is
 * on the connection actually made:
 *
 * - an IP literal (any spelling) is checked before connecting;
 * - a name is resolved by the policy's `lookup`, which checks every address
 *   and hands Node the checked one to connect to (no second resolution);
 * - a Unix socket path needs an explicit `unix:` allow entry.
 *
 * A refusal destroys the socket with the policy's error, which the driver
 * reports as its connection error (the engines pass it through unchanged).
 * TLS is unaffected: the driver still verifies the server against the name
 * it was given.
 */
export class EgressSocket extends Socket {
  readonly #policy: EgressPolicy;

  constructor(policy: EgressPolicy) {
    super();
    this.#policy = policy;
  }

  // The overloads of Socket#connect are many; the drivers use (port, host),
  // (path) and ({ port, host } | { path }), each with an optional callback.
  override connect(...args: unknown[]): this {
    const callback = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
    const [first, second] = args;
    let target: { path: string } | { port: number; host: string };
    if (typeof first === 'object' && first !== null) {
      const o = first as { path?: string; port?: number | string; host?: string };
      target = o.path ? { path: o.path } : { port: Number(o.port), host: o.host ?? 'localhost' };
    } else if (typeof first === 'string' && !/^\d+$/.test(first)) {
      target = { path: first };
    } else {
      target = { port: Number(first), host: typeof second === 'string' ? second : 'localhost' };
    }
    try {
      if ('path' in target) {
        this.#policy.assertSocketPathAllowed(target.path);
        return super.connect(target.path, callback);
      }
      const literal = parseIp(target.host.startsWith('[') ? target.host.slice(1, -1) : target.host);
      if (literal) this.#policy.assertAllowed(target.host, literal, target.port);
    } catch (error) {
      // As a failed connection reports it: asynchronously, as an 'error'.
      process.nextTick(() => this.destroy(error as Error));
      return this;
    }
    const options = { port: target.port, host: target.host, lookup: this.#policy.lookup(target.port) };
    return callback ? super.connect(options, callback) : super.connect(options);
  }
}
