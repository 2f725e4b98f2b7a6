import {
  type AnomalyConfig,
  createAnomalyRules,
  FINDING_SEVERITIES,
  type FindingSeverity,
  isPolicyAction,
  isQuarantineAction,
  parseDuration,
  QUARANTINE_ACTIONS,
  type QuarantineAction,
  ValidationError,
} from '@custos/core';

type Kind =
  | 'share'
  | 'duration'
  | 'count'
  | 'factor'
  | 'bool'
  | 'severity'
  | 'actions'
  | 'prefixes'
  | 'roles'
  | 'identities'
  | 'prefixLength'
  | 'level';

/** Each rule's settings in the config file (snake_case, durations as `15m`) and the engine's name for them. */
const RULE_SETTINGS: Readonly<Record<string, Readonly<Record<string, readonly [string, Kind]>>>> = {
  'dead-task-token': {
    severity: ['severity', 'severity'],
    cooldown: ['cooldownMs', 'duration'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'bootstrap-token-reuse': { severity: ['severity', 'severity'] },
  honeytoken: { severity: ['severity', 'severity'], cooldown: ['cooldownMs', 'duration'] },
  'denied-spike': {
    severity: ['severity', 'severity'],
    window: ['windowMs', 'duration'],
    buckets: ['buckets', 'count'],
    min_denied: ['minDenied', 'count'],
    factor: ['factor', 'factor'],
    baseline: ['baselineMs', 'duration'],
    min_history: ['minHistoryMs', 'duration'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'first-access': {
    severity: ['severity', 'severity'],
    actions: ['actions', 'actions'],
    upstreams: ['upstreams', 'bool'],
    ignore_prefixes: ['ignorePrefixes', 'prefixes'],
    warmup: ['warmupMs', 'duration'],
    warmup_events: ['warmupEvents', 'count'],
    per_role: ['perRole', 'bool'],
    per_identity: ['perIdentity', 'bool'],
    operators: ['operators', 'bool'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'request-burst': {
    severity: ['severity', 'severity'],
    window: ['windowMs', 'duration'],
    buckets: ['buckets', 'count'],
    min_requests: ['minRequests', 'count'],
    factor: ['factor', 'factor'],
    baseline: ['baselineMs', 'duration'],
    peak_factor: ['peakFactor', 'factor'],
    peak: ['peakMs', 'duration'],
    min_history: ['minHistoryMs', 'duration'],
    operators: ['operators', 'bool'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'credential-rate': {
    severity: ['severity', 'severity'],
    window: ['windowMs', 'duration'],
    buckets: ['buckets', 'count'],
    min_issued: ['minIssued', 'count'],
    factor: ['factor', 'factor'],
    baseline: ['baselineMs', 'duration'],
    peak_factor: ['peakFactor', 'factor'],
    peak: ['peakMs', 'duration'],
    min_history: ['minHistoryMs', 'duration'],
    operators: ['operators', 'bool'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'off-hours': {
    severity: ['severity', 'severity'],
    min_history: ['minHistoryMs', 'duration'],
    min_events: ['minEvents', 'count'],
    rare_share: ['rareShare', 'share'],
    cooldown: ['cooldownMs', 'duration'],
    per_role: ['perRole', 'bool'],
    per_identity: ['perIdentity', 'bool'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'delegation-shape': {
    severity: ['severity', 'severity'],
    min_delegations: ['minDelegations', 'count'],
    min_history: ['minHistoryMs', 'duration'],
    depth_margin: ['depthMargin', 'level'],
    width_factor: ['widthFactor', 'factor'],
    min_width: ['minWidth', 'count'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
  'new-source-address': {
    severity: ['severity', 'severity'],
    ipv4_prefix: ['ipv4Prefix', 'prefixLength'],
    ipv6_prefix: ['ipv6Prefix', 'prefixLength'],
    warmup: ['warmupMs', 'duration'],
    warmup_events: ['warmupEvents', 'count'],
    per_role: ['perRole', 'bool'],
    per_identity: ['perIdentity', 'bool'],
    operators: ['operators', 'bool'],
    roles: ['roles', 'roles'],
    identities: ['identities', 'identities'],
  },
};

const WARMUP_ROLE_SETTINGS: Readonly<Record<string, readonly [string, Kind]>> = {
  disabled: ['disabled', 'bool'],
  warmup: ['warmupMs', 'duration'],
  warmup_events: ['warmupEvents', 'count'],
};

/** The settings each rule takes per role (`roles: { NAME: { … } }`) and per identity (`identities: { ID: { … } }`). */
const ROLE_SETTINGS: Readonly<Record<string, Readonly<Record<string, readonly [string, Kind]>>>> = {
  'dead-task-token': { disabled: ['disabled', 'bool'], severity: ['severity', 'severity'] },
  'denied-spike': {
    disabled: ['disabled', 'bool'],
    min_denied: ['minDenied', 'count'],
    factor: ['factor', 'factor'],
  },
  'first-access': WARMUP_ROLE_SETTINGS,
  'new-source-address': WARMUP_ROLE_SETTINGS,
  'request-burst': {
    disabled: ['disabled', 'bool'],
    min_requests: ['minRequests', 'count'],
    factor: ['factor', 'factor'],
    peak_factor: ['peakFactor', 'factor'],
  },
  'off-hours': {
    disabled: ['disabled', 'bool'],
    min_history: ['minHistoryMs', 'duration'],
    min_events: ['minEvents', 'count'],
  },
  'delegation-shape': {
    disabled: ['disabled', 'bool'],
    min_delegations: ['minDelegations', 'count'],
    depth_margin: ['depthMargin', 'level'],
    width_factor: ['widthFactor', 'factor'],
    min_width: ['minWidth', 'count'],
  },
  'credential-rate': {
    disabled: ['disabled', 'bool'],
    min_issued: ['minIssued', 'count'],
    factor: ['factor', 'factor'],
    peak_factor: ['peakFactor', 'factor'],
  },
};

const ROLE_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The `anomaly` section of the server configuration file, checked whole at
 * start: an unknown rule or setting, or a value of the wrong kind, stops the
 * server with a message naming it — a typo must not silently leave a rule
 * at its defaults.
 *
 * @example
 * { "anomaly": { "rules": { "denied-spike": { "min_denied": 50 },
 *   "first-access": { "warmup": "48h", "roles": { "migrator": { "disabled": true } } } } } }
 */
export function resolveAnomalyConfig(section: unknown): AnomalyConfig | undefined {
  if (section === undefined) return undefined;
  if (!isObject(section)) throw new ValidationError('anomaly is an object.');
  const config: {
    enabled?: boolean;
    warmEvents?: number;
    maxFindingsPerMinute?: number;
    actions?: { rules?: Record<string, readonly QuarantineAction[]>; minSeverity?: FindingSeverity };
    rules?: Record<string, unknown>;
  } = {};
  const actions: Record<string, readonly QuarantineAction[]> = {};
  for (const [key, value] of Object.entries(section)) {
    if (key === 'enabled') config.enabled = setting('anomaly.enabled', value, 'bool') as boolean;
    else if (key === 'warm_events') {
      if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > 1_000_000) {
        throw new ValidationError('anomaly.warm_events is a whole number from 0 to 1,000,000.');
      }
      config.warmEvents = value as number;
    } else if (key === 'max_findings_per_minute') {
      config.maxFindingsPerMinute = setting('anomaly.max_findings_per_minute', value, 'count') as number;
    } else if (key === 'action_min_severity') {
      config.actions = {
        ...config.actions,
        minSeverity: setting('anomaly.action_min_severity', value, 'severity') as FindingSeverity,
      };
    } else if (key === 'rules') config.rules = rules(value, actions);
    else {
      throw new ValidationError(
        `anomaly.${key.slice(0, 64)} is not a setting (enabled, warm_events, max_findings_per_minute, action_min_severity, rules).`,
      );
    }
  }
  if (Object.keys(actions).length > 0) config.actions = { ...config.actions, rules: actions };
  // The rules check what only makes sense together (a window no longer than the baseline, …): at start, not at unseal.
  try {
    createAnomalyRules(config as AnomalyConfig);
  } catch (error) {
    throw new ValidationError(`anomaly.rules: ${error instanceof RangeError ? error.message : 'invalid'}.`);
  }
  return config as AnomalyConfig;
}

/**
 * `anomaly.rules.<rule>.action`: `none`, one action, or a list of them. Not
 * a setting of the rule itself (any rule may act), so it is taken out here
 * into the engine's action table.
 */
function ruleActions(where: string, value: unknown): readonly QuarantineAction[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 1 && list[0] === 'none') return [];
  if (list.length === 0 || list.length > QUARANTINE_ACTIONS.length || !list.every(isQuarantineAction)) {
    throw new ValidationError(`${where} is none, or one or a list of ${QUARANTINE_ACTIONS.join(', ')}.`);
  }
  return [...new Set(list)];
}

function rules(value: unknown, actions: Record<string, readonly QuarantineAction[]>): Record<string, unknown> {
  if (!isObject(value)) throw new ValidationError('anomaly.rules is an object of rule names.');
  const out: Record<string, unknown> = {};
  for (const [rule, settings] of Object.entries(value)) {
    // Own properties only: a rule or setting named `constructor` must not find Object's.
    const known = Object.hasOwn(RULE_SETTINGS, rule) ? RULE_SETTINGS[rule] : undefined;
    if (!known) {
      throw new ValidationError(
        `anomaly.rules.${rule.slice(0, 64)} is not a rule (${Object.keys(RULE_SETTINGS).join(', ')}).`,
      );
    }
    if (settings === false) {
      out[rule] = false;
      continue;
    }
    if (!isObject(settings)) throw new ValidationError(`anomaly.rules.${rule} is false or an object of settings.`);
    const parsed: Record<string, unknown> = {};
    for (const [name, raw] of Object.entries(settings)) {
      if (name === 'action') {
        actions[rule] = ruleActions(`anomaly.rules.${rule}.action`, raw);
        continue;
      }
      const entry = Object.hasOwn(known, name) ? known[name] : undefined;
      if (!entry) {
        throw new ValidationError(
          `anomaly.rules.${rule}.${name.slice(0, 64)} is not a setting (action, ${Object.keys(known).join(', ')}).`,
        );
      }
      const where = `anomaly.rules.${rule}.${name}`;
      parsed[entry[0]] =
        entry[1] === 'roles' || entry[1] === 'identities'
          ? subjectOverrides(where, raw, ROLE_SETTINGS[rule] ?? {}, entry[1])
          : setting(where, raw, entry[1]);
    }
    out[rule] = parsed;
  }
  return out;
}

function setting(where: string, value: unknown, kind: Kind): unknown {
  switch (kind) {
    case 'duration':
      if (typeof value !== 'string') throw new ValidationError(`${where} is a duration such as "15m".`);
      try {
        return parseDuration(value, 30 * 86_400_000);
      } catch {
        throw new ValidationError(`${where} is a duration such as "15m", at most 30d.`);
      }
    case 'count':
      if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 1_000_000) {
        throw new ValidationError(`${where} is a whole number from 1 to 1,000,000.`);
      }
      return value;
    case 'factor':
      if (typeof value !== 'number' || !(value >= 1 && value <= 10_000)) {
        throw new ValidationError(`${where} is a number from 1 to 10,000.`);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new ValidationError(`${where} is true or false.`);
      return value;
    case 'severity':
      if (typeof value !== 'string' || !(FINDING_SEVERITIES as readonly string[]).includes(value)) {
        throw new ValidationError(`${where} is one of ${FINDING_SEVERITIES.join(', ')}.`);
      }
      return value;
    case 'actions':
      if (
        !Array.isArray(value) ||
        value.length === 0 ||
        !value.every((a) => typeof a === 'string' && isPolicyAction(a))
      ) {
        throw new ValidationError(`${where} is a non-empty list of policy actions (read, write, …).`);
      }
      return value;
    case 'prefixes':
      if (
        !Array.isArray(value) ||
        value.length > 100 ||
        !value.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 512)
      ) {
        throw new ValidationError(`${where} is a list of at most 100 path prefixes.`);
      }
      return value;
    case 'share':
      if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
        throw new ValidationError(`${where} is a share from 0 to below 1 (0.002 is 0.2%).`);
      }
      return value;
    case 'prefixLength':
      // The range per address family is the rule's to check (8..32, 16..128), with the other settings.
      if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > 128) {
        throw new ValidationError(`${where} is a prefix length (24 for IPv4, 64 for IPv6).`);
      }
      return value;
    case 'level':
      // Delegation levels: a role's max_depth is small, so a margin beyond 100 is a typo.
      if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > 100) {
        throw new ValidationError(`${where} is a whole number from 0 to 100.`);
      }
      return value;
    case 'roles':
    case 'identities':
      throw new Error('unreachable: role and identity overrides are parsed per rule');
  }
}

/**
 * Identities as custos writes them in `sub` (`bootstrap:bac_…`, `jwt:…`,
 * `spiffe://…`): printable, no spaces, bounded — a typo'd or pasted value
 * with a control character is refused, not silently never matched.
 */
const IDENTITY = /^[\x21-\x7e]{1,256}$/;

/** `roles: { NAME: { … } }` or `identities: { ID: { … } }`: the same settings, keyed by role name or identity. */
function subjectOverrides(
  where: string,
  value: unknown,
  known: Readonly<Record<string, readonly [string, Kind]>>,
  kind: 'roles' | 'identities',
): Record<string, Record<string, unknown>> {
  const [noun, valid] = kind === 'roles' ? (['a role name', ROLE_NAME] as const) : (['an identity', IDENTITY] as const);
  if (!isObject(value)) throw new ValidationError(`${where} is an object keyed by ${noun.replace(/^an? /, '')}.`);
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, settings] of Object.entries(value)) {
    if (!valid.test(key)) throw new ValidationError(`${where}: "${key.slice(0, 64)}" is not ${noun}.`);
    if (!isObject(settings)) throw new ValidationError(`${where}.${key} is an object.`);
    const parsed: Record<string, unknown> = {};
    for (const [name, raw] of Object.entries(settings)) {
      // Own properties only: a setting named `constructor` must not find Object's.
      const entry = Object.hasOwn(known, name) ? known[name] : undefined;
      if (!entry) {
        throw new ValidationError(
          `${where}.${key.slice(0, 64)}.${name.slice(0, 64)} is not a setting (${Object.keys(known).join(', ')}).`,
        );
      }
      parsed[entry[0]] = setting(`${where}.${key}.${name}`, raw, entry[1]);
    }
    out[key] = parsed;
  }
  return out;
}
