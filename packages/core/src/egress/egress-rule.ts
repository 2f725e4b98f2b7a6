import { ValidationError } from '../errors/index.js';
import { embeddedIpv4 } from './address-ranges.js';
import { type IpBytes, inPrefix, parseIpv4, parseIpv6 } from './ip-address.js';

/**
 * One entry of the egress allow-list, as an operator writes it:
 *
 * - `10.0.0.0/8`, `127.0.0.1`, `fd00::/8`, `[::1]` — addresses and CIDR blocks;
 * - `db.internal`, `localhost` — exactly this name (whatever it resolves to:
 *   the operator vouches for the name);
 * - `*.corp.example` — any name below `corp.example` (not the name itself);
 * - any of these with `:PORT` (`127.0.0.1:5432`, `[::1]:8443`, `*.corp.example:443`)
 *   to allow that port only;
 * - `unix:/var/run/postgresql` — a Unix socket path or directory (database engines).
 */
export type EgressRule =
  | { kind: 'cidr'; network: IpBytes; bits: number; port?: number; text: string }
  | { kind: 'name'; name: string; port?: number; text: string }
  | { kind: 'suffix'; suffix: string; port?: number; text: string }
  | { kind: 'unix'; path: string; text: string };

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** Lower case, no trailing dot: `Example.COM.` and `example.com` are one name. */
export function normalizeHostname(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function isHostname(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65_535) throw invalid(entry, 'the port is 1–65535');
  return port;
}

const invalid = (entry: string, why: string) =>
  new ValidationError(`The egress allow entry "${entry.slice(0, 100)}" is not valid: ${why}.`);

/** Parses one allow-list entry; throws ValidationError naming the entry. */
export function parseEgressRule(entry: string): EgressRule {
  const text = entry.trim();
  if (text.startsWith('unix:')) {
    const path = text.slice(5).replace(/\/+$/, '');
    if (!isNormalSocketPath(path)) {
      throw invalid(text, 'a socket path is absolute, without ".", ".." or empty segments');
    }
    return { kind: 'unix', path, text };
  }
  let host = text;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1] as string;
    if (bracket[2] !== undefined) port = parsePort(bracket[2], text);
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const at = text.lastIndexOf(':');
    host = text.slice(0, at);
    port = parsePort(text.slice(at + 1), text);
  }
  const portPart = port === undefined ? {} : { port };
  const [address, prefix, ...extra] = host.split('/');
  if (extra.length > 0 || address === undefined) throw invalid(text, 'one "/" at most');
  // Only canonical dotted quads here: an allow-list is read by people, and
  // `127.1` allowing loopback would surprise the next reader.
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(address) ? parseIpv4(address) : undefined;
  const v6 = v4 ? undefined : parseIpv6(address);
  if (v4 || v6) {
    const network = (v4 ?? v6) as IpBytes;
    const max = network.length * 8;
    const bits = prefix === undefined ? max : Number(prefix);
    if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || bits > max)) {
      throw invalid(text, `the prefix length is 0–${max}`);
    }
    return { kind: 'cidr', network, bits, ...portPart, text };
  }
  if (parseIpv4(address)) throw invalid(text, 'write an IPv4 address as a dotted quad (a.b.c.d)');
  if (prefix !== undefined) throw invalid(text, 'a CIDR block needs an IP address');
  const name = normalizeHostname(address);
  if (name.startsWith('*.')) {
    const suffix = name.slice(2);
    if (!isHostname(suffix) || !suffix.includes('.')) throw invalid(text, 'a suffix is *.domain.tld');
    return { kind: 'suffix', suffix, ...portPart, text };
  }
  if (!isHostname(name)) throw invalid(text, 'expected an IP address, CIDR block, host name or *.suffix');
  return { kind: 'name', name, ...portPart, text };
}

const portMatches = (rule: { port?: number }, port: number) => rule.port === undefined || rule.port === port;

/** True when a name rule allows `hostname` (normalised) on `port`. */
export function ruleAllowsName(rule: EgressRule, hostname: string, port: number): boolean {
  if (rule.kind === 'name') return rule.name === hostname && portMatches(rule, port);
  if (rule.kind === 'suffix') return hostname.endsWith(`.${rule.suffix}`) && portMatches(rule, port);
  return false;
}

/**
 * True when a CIDR rule covers `address` on `port`. An IPv6 form that
 * embeds an IPv4 address is also matched as that IPv4 address, so allowing
 * `127.0.0.1` allows `::ffff:127.0.0.1` (the same destination) too.
 */
export function ruleAllowsAddress(rule: EgressRule, address: IpBytes, port: number): boolean {
  if (rule.kind !== 'cidr' || !portMatches(rule, port)) return false;
  if (inPrefix(address, rule.network, rule.bits)) return true;
  const v4 = embeddedIpv4(address);
  return v4 !== undefined && inPrefix(v4, rule.network, rule.bits);
}

/**
 * True for an absolute path with no `.` or `..` segment, no empty segment
 * (`//`) and no NUL: one spelling per file, so a prefix of it is a real
 * directory of it. Paths are not normalised instead: `..` through a symbolic
 * link goes elsewhere than the string says, and an engine URL has no reason
 * to spell its socket so.
 */
export function isNormalSocketPath(path: string): boolean {
  if (!path.startsWith('/') || path.includes('\0')) return false;
  if (path === '/') return true;
  return path
    .slice(1)
    .split('/')
    .every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/**
 * True when a unix rule allows connecting to the socket at `path`: the
 * rule's directory itself or anything below it on a segment boundary
 * (`/var/run/postgresql` does not cover `/var/run/postgresql2`), and only for
 * a normal path (`/var/run/postgresql/../../tmp/x` is not below it).
 */
export function ruleAllowsSocket(rule: EgressRule, path: string): boolean {
  if (rule.kind !== 'unix' || !isNormalSocketPath(path)) return false;
  return path === rule.path || path.startsWith(`${rule.path}/`);
}
