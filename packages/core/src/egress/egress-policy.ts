import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { CustosError, isCustosError } from '../errors/index.js';
import { ADDRESS_CLASS_LABEL, type AddressClass, classifyAddress } from './address-ranges.js';
import {
  type EgressRule,
  isNormalSocketPath,
  normalizeHostname,
  parseEgressRule,
  ruleAllowsAddress,
  ruleAllowsName,
  ruleAllowsSocket,
} from './egress-rule.js';
import { formatIp, type IpBytes, parseIp } from './ip-address.js';

/**
 * The one egress policy: every connection custos opens on someone's behalf
 * goes through it — rotator webhooks, JWKS fetches, database engines, and
 * what comes later (alert sinks, upstreams, cloud sources).
 *
 * Why it exists: those destinations are chosen by people narrower than the
 * machine custos runs on (an operator with `write` on one engine, a secret
 * owner configuring a webhook). Without a policy custos would connect for
 * them to its own loopback services, to the cloud metadata service at
 * 169.254.169.254 (instance credentials), or into the private network it
 * sits in: server-side request forgery with custos's network position.
 *
 * What it decides, and why each rule is where it is:
 * - Loopback, unspecified (0.0.0.0 reaches the local host), link-local
 *   (metadata), private (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), multicast,
 *   reserved and documentation ranges are refused unless an operator allowed
 *   them (`egress.allow`, `--egress-allow`). Public unicast addresses are
 *   allowed unless `allow_public` is off, which makes the list exclusive.
 * - Every spelling of an address is reduced to its bytes first: `127.1`,
 *   `2130706433`, `0x7f.1`, `[::1]`, `[::ffff:127.0.0.1]`, NAT64
 *   `64:ff9b::7f00:1` all classify as loopback (see ip-address.ts and
 *   address-ranges.ts).
 * - A name is resolved once, here, with a timeout; every address it resolves
 *   to must be allowed (a name that also resolves to a private address is
 *   refused), and the connection is made to the address that was checked —
 *   the caller connects through {@link EgressPolicy.lookup} or to the address
 *   {@link EgressPolicy.resolve} returned, never by resolving again. So a
 *   name whose DNS answer changes between the check and the connection (DNS
 *   rebinding) cannot move the connection.
 * - A name on the allow-list is trusted whatever it resolves to: the
 *   operator vouches for the name (and its DNS).
 * - HTTP callers never follow redirects (egress-fetch.ts): a 3xx is a
 *   failure, so an allowed host cannot bounce custos, or a credential it
 *   sent, to a refused one. Every wait has a deadline.
 *
 * What it does not hide: the outcome of a call to an *allowed* destination.
 * Whoever configures a webhook learns whether its URL acknowledged; whoever
 * configures an engine learns whether it connected. That is acceptable
 * because only destinations an operator allowed can be probed this way, and
 * refusals are decided before any connection is opened (a name costs one DNS
 * query), so a refused destination gives no reachability or timing either.
 */
export class EgressPolicy {
  readonly #options: EgressPolicyOptions;
  readonly #rules: readonly EgressRule[];
  readonly #allowPublic: boolean;
  readonly #resolver: EgressResolver;
  /** Deadline of one outbound HTTP call (DNS, connect, TLS, answer, body). */
  readonly timeoutMs: number;
  /** Deadline of one DNS resolution. */
  readonly dnsTimeoutMs: number;
  /** The largest answer body an HTTP caller reads. */
  readonly maxResponseBytes: number;

  constructor(options: EgressPolicyOptions = {}) {
    this.#options = options;
    this.#rules = (options.allow ?? []).map(parseEgressRule);
    this.#allowPublic = options.allowPublic ?? true;
    this.#resolver = options.resolver ?? systemResolver;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.dnsTimeoutMs = options.dnsTimeoutMs ?? 5_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  /**
   * This policy with `entries` added to its allow-list, everything else
   * (public default, timeouts, resolver) unchanged — for calls whose
   * destination an operator allowed on the object that makes them (an
   * upstream's `allow_hosts`), so that allowing one upstream's loopback
   * address widens nothing for any other call.
   */
  withAllow(entries: readonly string[]): EgressPolicy {
    if (entries.length === 0) return this;
    return new EgressPolicy({ ...this.#options, allow: [...(this.#options.allow ?? []), ...entries] });
  }

  /** The allow-list as written (for diagnostics). */
  get allow(): string[] {
    return this.#rules.map((r) => r.text);
  }

  /**
   * Decides for one address reached as `host` (the name or literal the
   * caller was given) on `port`. Pure: no DNS.
   */
  decide(host: string, address: IpBytes, port: number): EgressDecision {
    const name = normalizeHostname(host);
    if (this.#rules.some((r) => ruleAllowsName(r, name, port) || ruleAllowsAddress(r, address, port))) {
      return { allowed: true };
    }
    const kind = classifyAddress(address);
    if (kind === 'public' && this.#allowPublic) return { allowed: true };
    return { allowed: false, kind };
  }

  /** Throws {@link EgressRefusedError} unless {@link decide} allows it. */
  assertAllowed(host: string, address: IpBytes, port: number): void {
    const decision = this.decide(host, address, port);
    if (decision.allowed) return;
    const literal = parseIp(host.startsWith('[') ? host.slice(1, -1) : host);
    if (!literal) throw new EgressRefusedError(host, port, { name: normalizeHostname(host) });
    // Suggest the entry an operator would write: the address in its canonical form.
    const entry = literal.length === 4 ? formatIp(literal) : `[${formatIp(literal)}]`;
    throw new EgressRefusedError(host, port, { kind: decision.kind, entry });
  }

  /**
   * Resolves `host` once (an IP literal in any spelling needs no DNS) and
   * checks every address it resolves to; returns the one to connect to.
   * Throws {@link EgressRefusedError}.
   *
   * A name no allow entry vouches for gets one fixed refusal whatever went
   * wrong — it resolves to a refused address, it does not resolve, DNS timed
   * out — because the difference is an oracle on internal DNS: whoever
   * configures a JWKS URL, a webhook or an engine with narrow rights could
   * otherwise sort names into "internal" (resolves to a private range) and
   * "nonexistent". A name an entry vouches for (`db.internal`,
   * `*.corp.example`) keeps a precise CUSTOS_ERR_EGRESS_FAILED when DNS
   * fails: an operator chose to let it be reached, so nothing is learnt.
   */
  async resolve(host: string, port: number, signal?: AbortSignal): Promise<ResolvedDestination> {
    const literal = parseIp(host.startsWith('[') ? host.slice(1, -1) : host);
    if (literal) {
      this.assertAllowed(host, literal, port);
      return { address: formatIp(literal), family: literal.length === 4 ? 4 : 6 };
    }
    const name = normalizeHostname(host);
    const vouched = this.#rules.some((r) => ruleAllowsName(r, name, port));
    const refuse = (precise: () => CustosError) => (vouched ? precise() : new EgressRefusedError(host, port, { name }));
    let addresses: Array<{ address: string; family: number }>;
    try {
      addresses = await this.#resolveName(name, signal);
    } catch (error) {
      throw refuse(() => error as CustosError);
    }
    if (addresses.length === 0) throw refuse(() => new EgressFailedError(`${host} does not resolve.`));
    const checked: ResolvedDestination[] = [];
    for (const a of addresses) {
      const bytes = parseIp(a.address);
      if (!bytes) throw refuse(() => new EgressFailedError(`${host} resolved to something that is not an address.`));
      this.assertAllowed(host, bytes, port);
      checked.push({ address: formatIp(bytes), family: bytes.length === 4 ? 4 : 6 });
    }
    return checked[0] as ResolvedDestination;
  }

  /**
   * A `lookup` for `net.connect`, `http.request` and drivers that take one:
   * resolves through {@link resolve}, so the socket connects to the checked
   * address. (Node skips `lookup` for IP literals: callers check those with
   * {@link resolve} or {@link assertAllowed} first — see egress-socket.ts.)
   */
  lookup(port: number): LookupFunction {
    return (hostname, options, callback) => {
      this.resolve(hostname, port).then(
        ({ address, family }) => {
          if (options.all) callback(null, [{ address, family }]);
          else callback(null, address, family);
        },
        (error: Error) => callback(error as NodeJS.ErrnoException, '', 4),
      );
    };
  }

  /** True when a Unix socket path is allowed (only ever by an explicit `unix:` entry). */
  allowsSocketPath(path: string): boolean {
    return this.#rules.some((r) => ruleAllowsSocket(r, path));
  }

  /** Throws CUSTOS_ERR_EGRESS_REFUSED unless the Unix socket path is allowed. */
  assertSocketPathAllowed(path: string): void {
    if (!isNormalSocketPath(path)) {
      throw new CustosError(
        'CUSTOS_ERR_EGRESS_REFUSED',
        'The Unix socket path is not a normal absolute path (no ".", ".." or empty segments): custos refuses it.',
      );
    }
    if (!this.allowsSocketPath(path)) {
      throw new CustosError(
        'CUSTOS_ERR_EGRESS_REFUSED',
        `Unix sockets are refused unless allowed: start the server with --egress-allow unix:${path.replace(/\/[^/]*$/, '') || '/'}.`,
      );
    }
  }

  /**
   * The check made when a destination is configured (a webhook URL, a JWKS
   * URL), so that a refused one is an error now rather than a failure at
   * 3 a.m.: the URL parses, its scheme is one of `protocols`, it carries no
   * credentials, and its host passes {@link resolve} — which refuses a name
   * that does not resolve exactly as one that resolves to a refused address
   * (see there), so configuring a URL is no oracle on internal DNS. A name
   * an allow entry vouches for is accepted even if it does not resolve yet.
   */
  async checkUrl(text: string, protocols: readonly string[] = ['https:', 'http:']): Promise<URL> {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new CustosError('CUSTOS_ERR_VALIDATION', 'The URL is not valid.');
    }
    if (!protocols.includes(url.protocol)) {
      throw new CustosError('CUSTOS_ERR_VALIDATION', `The URL must use ${protocols.join(' or ').replace(/:/g, '')}.`);
    }
    if (url.username || url.password) {
      throw new CustosError('CUSTOS_ERR_VALIDATION', 'The URL must not carry credentials.');
    }
    try {
      await this.resolve(url.hostname, urlPort(url));
    } catch (error) {
      if (isEgressRefusal(error)) throw error;
    }
    return url;
  }

  async #resolveName(name: string, signal?: AbortSignal): Promise<Array<{ address: string; family: number }>> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EgressFailedError(`Resolving ${name} timed out.`)), this.dnsTimeoutMs);
      signal?.addEventListener('abort', () => reject(new EgressFailedError(`Resolving ${name} was cut off.`)), {
        once: true,
      });
    });
    try {
      return await Promise.race([
        this.#resolver(name).catch(() => {
          throw new EgressFailedError(`${name} does not resolve.`);
        }),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Resolves a name to every address it has (as `dns.lookup` with `all: true`). */
export type EgressResolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemResolver: EgressResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** Options of {@link EgressPolicy}. */
export interface EgressPolicyOptions {
  /** Allow-list entries (see {@link parseEgressRule}): addresses, CIDRs, names, `*.suffix`, `:port`, `unix:` paths. */
  allow?: readonly string[];
  /** Public unicast addresses are allowed without an entry (default true); false makes the list exclusive. */
  allowPublic?: boolean;
  /** Deadline of one outbound HTTP call, in ms (default 10000). */
  timeoutMs?: number;
  /** Deadline of one DNS resolution, in ms (default 5000). */
  dnsTimeoutMs?: number;
  /** Largest HTTP answer body read, in bytes (default 1 MiB). */
  maxResponseBytes?: number;
  /** Replaces the system resolver (tests: a name that resolves where the test says). */
  resolver?: EgressResolver;
}

/** The verdict on one destination. */
export type EgressDecision = { allowed: true } | { allowed: false; kind: AddressClass };

/** An address the policy allowed, to connect to as is. */
export interface ResolvedDestination {
  address: string;
  family: 4 | 6;
}

/** The port a URL reaches (its default when none is written). */
export function urlPort(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : 0;
}

/**
 * A destination refused by the egress policy. The message names the host as
 * the caller gave it and how an operator allows it; never a resolved address
 * nor a URL (whose path or query may hold a credential). For an address
 * literal it names the class (`127.0.0.1:5432 is a loopback address`): the
 * caller wrote the address, so the class tells them nothing new, and it is
 * what a developer pointing a local server at a local database needs to read.
 * For a name it is one fixed sentence, whether the name resolved to a
 * refused address or did not resolve at all (see {@link EgressPolicy.resolve}).
 */
export class EgressRefusedError extends CustosError {
  constructor(host: string, port: number, refused: { kind: AddressClass; entry: string } | { name: string }) {
    const [what, entry] =
      'name' in refused
        ? [
            'is refused: custos connects to a name only when it resolves, and only to addresses it may reach',
            refused.name,
          ]
        : [
            refused.kind === 'public' ? 'is not on the egress allow-list' : `is a ${ADDRESS_CLASS_LABEL[refused.kind]}`,
            refused.entry,
          ];
    super(
      'CUSTOS_ERR_EGRESS_REFUSED',
      `${host}:${port} ${what}; custos refuses it unless allowed: start the server with --egress-allow ${entry} (or add it to egress.allow in the config file).`,
    );
  }
}

/**
 * True for an egress refusal (CUSTOS_ERR_EGRESS_REFUSED): the one test of
 * "was this refused by the policy?" that every caller uses — passed through
 * as it is (its message says which allow entry would help), never turned
 * into "unavailable" or "did not acknowledge".
 */
export function isEgressRefusal(error: unknown): error is CustosError {
  return isCustosError(error) && error.code === 'CUSTOS_ERR_EGRESS_REFUSED';
}

/** An outbound call that could not complete (unresolvable, unreachable, timed out, redirected, too large). */
export class EgressFailedError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_EGRESS_FAILED', detail);
  }
}
