import { classifyAddress } from './address-ranges.js';
import { normalizeHostname } from './egress-rule.js';
import { parseIp } from './ip-address.js';

/**
 * True for a URL host whose traffic never leaves this machine: `localhost`
 * (any case, with or without the trailing dot) or a literal loopback address
 * in any spelling (`127.0.0.1`, `127.0.0.2`, `[::1]`, `[::ffff:127.0.0.1]`).
 *
 * The one definition of "http only on loopback": wherever custos would send
 * or fetch something that must not cross a network in clear — a webhook
 * rotator's new secret value, an issuer's key set — plain `http` is allowed
 * to these hosts only. (Whether custos may reach them at all is the egress
 * policy's decision, separately: loopback is refused unless allowed.)
 *
 * @example
 * isLoopbackHost(new URL('http://[::1]:8200/hook').hostname); // true
 * isLoopbackHost('db.internal'); // false
 */
export function isLoopbackHost(hostname: string): boolean {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  const address = parseIp(bare);
  return address ? classifyAddress(address) === 'loopback' : normalizeHostname(bare) === 'localhost';
}
