import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { formatNetwork, networkOf } from '../network-prefix.js';
import { evidenceOf, overridesFor, setBounded, subjectOf } from '../rule-support.js';

/** What may be tuned per role (`roles` in {@link NewSourceAddressConfig}). */
export interface NewSourceAddressRoleConfig {
  /** Never fire for this role (its tasks run anywhere by design: laptops, autoscaled pools). */
  readonly disabled?: boolean;
  readonly warmupMs?: number;
  readonly warmupEvents?: number;
}

export interface NewSourceAddressConfig {
  readonly severity: FindingSeverity;
  /** IPv4 addresses are grouped into networks of this prefix length (default 24: one /24 is one place). */
  readonly ipv4Prefix: number;
  /** IPv6 addresses likewise (default 64: one /64 is one host's or one site's subnet). */
  readonly ipv6Prefix: number;
  /** A subject learns silently until it has this much history (ms, default 24 h) since its first request… */
  readonly warmupMs: number;
  /** …and this many requests (default 50). */
  readonly warmupEvents: number;
  /** Judge each role against the networks any of its tasks came from (default true). */
  readonly perRole: boolean;
  /** Judge each task identity against its own networks (default true). */
  readonly perIdentity: boolean;
  /** Judge operator tokens (by accessor) too (default false: operators travel). Root is never judged. */
  readonly operators: boolean;
  /** Subjects remembered at most, per kind (default 10,000; the oldest goes, and warms up again). */
  readonly maxSubjects: number;
  /** Networks remembered per subject (default 256); beyond, new ones are neither learned nor judged. */
  readonly maxNetworksPerSubject: number;
  /** Networks remembered over all subjects (default 1,000,000): the rule's memory bound. */
  readonly maxNetworksTotal: number;
  /** Per-role overrides by role name. */
  readonly roles: { readonly [role: string]: NewSourceAddressRoleConfig };
  /** Per identity (a task's `sub`): its own entry wins over its role's. */
  readonly identities: { readonly [identity: string]: NewSourceAddressRoleConfig };
}

export const NEW_SOURCE_ADDRESS_DEFAULTS: NewSourceAddressConfig = {
  severity: 'medium',
  ipv4Prefix: 24,
  ipv6Prefix: 64,
  warmupMs: 24 * 3_600_000,
  warmupEvents: 50,
  perRole: true,
  perIdentity: true,
  operators: false,
  maxSubjects: 10_000,
  maxNetworksPerSubject: 256,
  maxNetworksTotal: 1_000_000,
  roles: {},
  identities: {},
};

interface Baseline {
  readonly first: number;
  count: number;
  /** The last address seen, as text: the usual case (the same caller again) costs one string comparison. */
  lastAddress: string;
  readonly networks: Set<number | string>;
}

/**
 * `new-source-address`: a role or an identity made a request from a network
 * it has never used. Workloads run from the same few hosts; a task token
 * presented from elsewhere has usually been copied off its host (a leaked
 * log, a stolen environment) — the one sign of theft the token itself
 * cannot hide.
 *
 * The address is the request's `source_ip` as custos saw it (Fastify's
 * `request.ip`: behind a reverse proxy, only meaningful when the server
 * trusts that proxy's forwarding header). Addresses are grouped into
 * networks (/24 and /64 by default) so a host renumbered within its subnet
 * is not new. Every request with a verified caller counts, refused ones
 * too: a stolen token is often first used for something its owner is not
 * allowed. Warm-up, one finding per new network, learned at once: as
 * `first-access`. Per event: one string comparison when the address is the
 * subject's last one, else one parse and a set lookup.
 */
export class NewSourceAddressRule implements AnomalyRule {
  readonly name = 'new-source-address';
  readonly description = 'A role or identity made a request from a network it has never used';
  readonly config: NewSourceAddressConfig;
  readonly #roles = new Map<string, Baseline>();
  readonly #identities = new Map<string, Baseline>();
  readonly #operators = new Map<string, Baseline>();
  /** Networks held over all subjects. */
  #networksTotal = 0;
  /** The current event's network, once parsed. */
  #network: number | string | undefined;

  constructor(config: Partial<NewSourceAddressConfig> = {}) {
    this.config = { ...NEW_SOURCE_ADDRESS_DEFAULTS, ...config };
    const { ipv4Prefix, ipv6Prefix } = this.config;
    if (!Number.isInteger(ipv4Prefix) || ipv4Prefix < 8 || ipv4Prefix > 32) {
      throw new RangeError('ipv4Prefix must be 8..32');
    }
    if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 16 || ipv6Prefix > 128) {
      throw new RangeError('ipv6Prefix must be 16..128');
    }
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request') return undefined;
    // A state-changing request is recorded twice (before and after): one counts.
    if (event.details?.phase === 'request') return undefined;
    const address = event.request.source_ip;
    const auth = event.auth;
    if (address === undefined || auth.root) return undefined;
    const newFor: string[] = [];
    // Parsed at most once per event, by the first subject whose last address differs.
    this.#network = undefined;
    if (auth.task_id !== undefined) {
      const role = auth.role;
      const tuning = overridesFor(this.config, role, auth.identity);
      if (tuning?.disabled) return undefined;
      if (this.config.perRole && role !== undefined && this.#isNew(this.#roles, role, address, epochMs, tuning)) {
        newFor.push(`role ${role}`);
      }
      const identity = auth.identity;
      if (
        this.config.perIdentity &&
        identity !== undefined &&
        this.#isNew(this.#identities, identity, address, epochMs, tuning)
      ) {
        newFor.push(`identity ${identity}`);
      }
    } else if (this.config.operators && auth.token_accessor !== undefined) {
      if (this.#isNew(this.#operators, auth.token_accessor, address, epochMs, undefined)) {
        newFor.push(`operator token ${auth.token_accessor}`);
      }
    }
    const network = this.#network;
    if (newFor.length === 0 || network === undefined) return undefined;
    const where = formatNetwork(network, this.config.ipv4Prefix);
    return {
      severity: this.config.severity,
      subject: { ...subjectOf(event), source_ip: address },
      evidence: [evidenceOf(observation)],
      explanation:
        `${cap(newFor.join(' and '))} ${newFor.length > 1 ? 'have' : 'has'} never made a request from ${where} ` +
        `before (address ${address}; the request was ${event.decision === 'allow' ? 'allowed' : 'refused'}). ` +
        'Workloads run from the same few hosts, so a token presented from a new network has either moved with ' +
        'its workload (a new node, a new subnet) or been copied off its host and used elsewhere. If the workload ' +
        'moved, acknowledge the alert: the network is now part of the baseline. If not, revoke the task and look ' +
        'at where its token could have leaked (logs, environment, child processes).',
    };
  }

  /**
   * Learns the address's network for the subject; true when it was new and
   * the subject is past its warm-up. Leaves the parsed network in
   * {@link #network} for the explanation.
   */
  #isNew(
    map: Map<string, Baseline>,
    key: string,
    address: string,
    epochMs: number,
    tuning: NewSourceAddressRoleConfig | undefined,
  ): boolean {
    let baseline = map.get(key);
    if (!baseline) {
      baseline = { first: epochMs, count: 0, lastAddress: '', networks: new Set() };
      const evicted = setBounded(map, key, baseline, this.config.maxSubjects);
      if (evicted) this.#networksTotal -= evicted.networks.size;
    }
    const warm =
      baseline.count >= (tuning?.warmupEvents ?? this.config.warmupEvents) &&
      epochMs - baseline.first >= (tuning?.warmupMs ?? this.config.warmupMs);
    baseline.count++;
    // The same address as last time: its network is known already.
    if (baseline.lastAddress === address) return false;
    const network = this.#network ?? networkOf(address, this.config.ipv4Prefix, this.config.ipv6Prefix);
    if (network === undefined) return false;
    this.#network = network;
    baseline.lastAddress = address;
    if (baseline.networks.has(network)) return false;
    // Full: neither learned nor judged (judging what cannot be learned would fire on every request from it).
    if (
      baseline.networks.size >= this.config.maxNetworksPerSubject ||
      this.#networksTotal >= this.config.maxNetworksTotal
    ) {
      return false;
    }
    baseline.networks.add(network);
    this.#networksTotal++;
    return warm;
  }
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
