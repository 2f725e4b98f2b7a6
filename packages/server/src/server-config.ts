import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type AnomalyConfig, parseDuration, parseEgressRule, ValidationError } from '@custos/core';
import { resolveAnomalyConfig } from './anomaly-config-file.js';
import { type RequestWebhookConfig, type RequestWebhookFile, resolveRequestWebhook } from './request-webhook-config.js';

/** Everything `custos server` needs; built from flags and an optional JSON config file. */
export interface ServerConfig {
  host: string;
  port: number;
  /** Where the dev seal key, the SQLite file, the audit file and the root token live. */
  dataDir: string;
  /** `sqlite:<file>` (default, under dataDir) or `postgres://…`. */
  storage: string;
  /**
   * `dev` (key file), `shamir` (operators unseal with shares) or `wrapped`:
   * auto-unseal through a root of trust, configured by {@link sealSettings}.
   */
  seal: 'dev' | 'shamir' | 'wrapped';
  /**
   * Wrapped seals: the config file's `seal` section as written (`{ type:
   * pkcs11, library, token_label, pin_env, key_label, mechanism }`), handed
   * to `createRootKeyWrapper` of `@custos/seals`, which validates it. Never
   * holds a credential: those are named (`pin_env`), not written here.
   */
  sealSettings?: Readonly<Record<string, unknown>>;
  /** `--migrate-seal`: migrate a dev or Shamir store to the configured wrapped seal (see docs/seals.md). */
  migrateSeal?: boolean;
  /** `--create-seal-key`: create the configured seal key (non-extractable) when the root of trust has none. */
  createSealKey?: boolean;
  /** Wrapped seals: between health checks of the root of trust (`seal.health_interval`, default 5s). */
  sealHealthIntervalMs?: number;
  audit: {
    file?: string;
    stdout: boolean;
    fsync: 'always' | 'never';
    /** `audit.file.max_bytes` / `audit.file.rotate_every`: rotation of the file (see docs/audit.md). */
    rotation?: { maxBytes?: number; everyMs?: number };
    /** `audit.archive.dir`: where archives are written (default `<data_dir>/audit-archive`); never from a request. */
    archiveDir: string;
    /** `audit.archive.every` / `keep_online` / `spread`: scheduled archival (off without `every`). */
    archiveSchedule?: { everyMs: number; keepOnlineMs: number; spreadMs: number };
    /** `audit.disk_guard`: free-space watch where the audit trail grows. */
    diskGuard?: {
      warnFreeBytes?: number;
      warnFreePercent?: number;
      checkEveryMs: number;
      windowMs: number;
      action: 'warn' | 'rotate-and-warn' | 'archive-and-warn';
    };
  };
  /**
   * Durability of acknowledged writes. `process` (default): every
   * acknowledged write and audit event survives a crash or SIGKILL of custos
   * (SQLite WAL with synchronous=NORMAL; the audit file is written, not
   * fsynced). `power`: they also survive an OS crash or power loss (SQLite
   * synchronous=FULL and an fdatasync of the audit file per batch), at the
   * cost of one or two fsyncs per group commit: see BENCHMARKS.md.
   */
  durability: 'process' | 'power';
  tls?: { cert: string; key: string };
  /** A second, HTTPS listener for mTLS logins (certificate from `tls`, else issued by the internal CA). */
  tlsListen?: { host: string; port: number };
  logLevel: string;
  /**
   * `json`: one JSON object per line (for machines). `pretty`: readable lines
   * and a startup banner (for a person). Unset: `pretty` when stdout is a
   * terminal, else `json` — the caller decides, it knows the terminal.
   */
  logFormat?: LogFormat;
  /** External base URL: the `iss` of task tokens and the base of DPoP `htu` (default: the listen address). */
  issuer: string;
  /**
   * The egress policy of every outbound call (engines, JWKS URLs, webhook
   * rotators). `allow`: entries that may be reached although they are
   * loopback, link-local or private (`127.0.0.1`, `10.0.0.0/8`,
   * `db.internal:5432`, `*.corp.example`, `unix:/var/run/postgresql`);
   * `allowPublic` false makes the list exclusive. The same in `--dev`:
   * a local database needs `--egress-allow 127.0.0.1`.
   */
  egress: { allow: string[]; allowPublic: boolean; timeoutMs: number };
  /**
   * The credential proxy listener (base-URL mode, `/u/NAME/<path>`): off
   * unless `--proxy-listen` or `proxy.listen` is set; `--dev` turns it on at
   * 127.0.0.1:8421 when the API listens at its default address (a `--dev`
   * server given another `--listen` gets no proxy unless asked, so two dev
   * servers on other ports never fight over 8421).
   */
  proxy?: { host: string; port: number; bodyLimit: number; headersTimeoutMs: number; idleTimeoutMs: number };
  /**
   * The decoy database endpoint that `db-url` honeytokens point at
   * (`--decoy-db-listen`, `honeytokens.db_listen`): off unless set.
   */
  decoyDb?: { host: string; port: number };
  /**
   * The webhook alert sink (`alerts.webhook` in the config file): findings
   * POSTed to `url`, signed with the key in `secretFile`, through the egress
   * policy. Configured by whoever writes the config file — an operator —
   * never through the API.
   */
  alertWebhook?: { url: string; secretFile: string; include: 'summary' | 'full' };
  /** The access-request webhook (`requests.webhook`, docs/jit.md): each new request POSTed, signed, with its console link. */
  requestWebhook?: RequestWebhookConfig;
  /** The anomaly engine's tuning (`anomaly` in the config file; see docs/anomaly.md). Default: every rule with its defaults. */
  anomaly?: AnomalyConfig;
}

/** How the server's log is written (see {@link ServerConfig.logFormat}). */
export type LogFormat = 'json' | 'pretty';

export interface ServerFlags {
  dev?: boolean;
  data?: string;
  listen?: string;
  config?: string;
  tlsListen?: string;
  logFormat?: string;
  /** `--egress-allow` entries, added to the config file's `egress.allow`. */
  egressAllow?: string[];
  /** `--proxy-listen HOST:PORT`: the credential proxy listener. */
  proxyListen?: string;
  /** `--decoy-db-listen HOST:PORT`: the decoy database endpoint of `db-url` honeytokens. */
  decoyDbListen?: string;
  /** `--migrate-seal`: migrate the stored dev or Shamir seal to the configured wrapped seal. */
  migrateSeal?: boolean;
  /** `--create-seal-key`: first start of a wrapped seal — create the configured key (non-extractable) when absent. */
  createSealKey?: boolean;
}

interface ConfigFile {
  durability?: 'process' | 'power';
  tls_listen?: string;
  issuer?: string;
  listen?: string;
  data_dir?: string;
  storage?: string;
  /** `dev`, `shamir`, or an object: `{ type: dev | shamir }` or a wrapped seal's section (`{ type: pkcs11, … }`). */
  seal?: string | Record<string, unknown>;
  audit?: {
    /** The file's path, or `{ path, max_bytes, rotate_every }`; `null`: no file. */
    file?: string | null | { path?: string; max_bytes?: number; rotate_every?: string };
    stdout?: boolean;
    fsync?: 'always' | 'never';
    archive?: { dir?: string; every?: string; keep_online?: string; spread?: string };
    disk_guard?: {
      warn_free_bytes?: number;
      warn_free_percent?: number;
      check_every?: string;
      window?: string;
      action?: string;
    };
  };
  tls?: { cert: string; key: string };
  log_level?: string;
  log_format?: string;
  egress?: { allow?: string[]; allow_public?: boolean; timeout?: string };
  proxy?: { listen?: string; body_limit?: number; headers_timeout?: string; idle_timeout?: string };
  alerts?: { webhook?: { url?: string; secret_file?: string; include?: string } };
  requests?: { webhook?: RequestWebhookFile };
  anomaly?: unknown;
  honeytokens?: { db_listen?: string };
}

export const DEFAULT_PROXY_LISTEN = '127.0.0.1:8421';

export const DEFAULT_LISTEN = '127.0.0.1:8420';

/**
 * Resolves the configuration: flags win over the file, the file over
 * defaults. `--dev` means: SQLite and the dev seal under `./.custos/`.
 */
export function resolveServerConfig(flags: ServerFlags, cwd = process.cwd()): ServerConfig {
  const file: ConfigFile = flags.config ? parseConfigFile(resolve(cwd, flags.config)) : {};
  const dataDir = resolve(cwd, flags.data ?? file.data_dir ?? '.custos');
  const [host, port] = parseListen(flags.listen ?? file.listen ?? DEFAULT_LISTEN);
  const { seal, ...sealRest } = resolveSeal(flags.dev ? 'dev' : (file.seal ?? (flags.config ? 'shamir' : 'dev')));
  if ((flags.migrateSeal || flags.createSealKey) && seal !== 'wrapped') {
    throw new ValidationError(
      '--migrate-seal and --create-seal-key need a wrapped seal (e.g. seal.type pkcs11) in the config file.',
    );
  }
  const durability = file.durability ?? (process.env.CUSTOS_DURABILITY === 'power' ? 'power' : 'process');
  if (durability !== 'process' && durability !== 'power') throw new ValidationError('durability is process or power.');
  const tlsListenText = flags.tlsListen ?? file.tls_listen;
  const tlsListen = tlsListenText ? parseListen(tlsListenText) : undefined;
  const logFormat = flags.logFormat ?? file.log_format;
  if (logFormat !== undefined && logFormat !== 'json' && logFormat !== 'pretty') {
    throw new ValidationError('--log-format is json or pretty.');
  }
  const auditFileSetting = file.audit?.file;
  const auditFilePath = typeof auditFileSetting === 'object' ? auditFileSetting?.path : auditFileSetting;
  const auditFile = auditFileSetting === null ? undefined : resolve(dataDir, auditFilePath ?? 'audit.jsonl');
  const rotation = resolveAuditRotation(auditFileSetting);
  const diskGuard = resolveDiskGuard(
    file.audit?.disk_guard,
    auditFile !== undefined,
    file.audit?.archive?.every !== undefined,
  );
  return {
    host,
    port,
    dataDir,
    storage: file.storage ?? `sqlite:${resolve(dataDir, 'custos.db')}`,
    seal,
    ...sealRest,
    ...(flags.migrateSeal ? { migrateSeal: true } : {}),
    ...(flags.createSealKey ? { createSealKey: true } : {}),
    audit: {
      ...(auditFile ? { file: auditFile } : {}),
      stdout: file.audit?.stdout ?? false,
      fsync: file.audit?.fsync ?? (durability === 'power' ? 'always' : 'never'),
      ...(rotation ? { rotation } : {}),
      archiveDir: resolve(dataDir, file.audit?.archive?.dir ?? 'audit-archive'),
      ...resolveArchiveSchedule(file.audit?.archive),
      ...(diskGuard ? { diskGuard } : {}),
    },
    durability,
    ...(file.tls ? { tls: { cert: resolve(cwd, file.tls.cert), key: resolve(cwd, file.tls.key) } } : {}),
    ...(tlsListen ? { tlsListen: { host: tlsListen[0], port: tlsListen[1] } } : {}),
    ...resolveDecoyDb(flags.decoyDbListen ?? file.honeytokens?.db_listen),
    logLevel: process.env.CUSTOS_LOG_LEVEL ?? file.log_level ?? 'info',
    ...(logFormat ? { logFormat } : {}),
    issuer: (
      file.issuer ?? `${file.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`
    ).replace(/\/+$/, ''),
    egress: resolveEgress(file.egress, flags.egressAllow),
    ...resolveProxy(flags, file, flags.listen ?? file.listen),
    ...resolveAlertWebhook(file.alerts?.webhook, cwd),
    ...(file.requests?.webhook !== undefined
      ? { requestWebhook: resolveRequestWebhook(file.requests.webhook, cwd) as RequestWebhookConfig }
      : {}),
    ...(file.anomaly !== undefined ? { anomaly: resolveAnomalyConfig(file.anomaly) } : {}),
  };
}

/** `audit.archive.every`, `keep_online` and `spread`, checked now so a typo stops the server at start. */
function resolveArchiveSchedule(archive: NonNullable<ConfigFile['audit']>['archive']): {
  archiveSchedule?: { everyMs: number; keepOnlineMs: number; spreadMs: number };
} {
  if (archive === undefined) return {};
  const known = new Set(['dir', 'every', 'keep_online', 'spread']);
  for (const key of Object.keys(archive)) {
    if (!known.has(key)) throw new ValidationError(`audit.archive.${key} is not a setting.`);
  }
  if (archive.every === undefined) {
    if (archive.keep_online !== undefined) throw new ValidationError('audit.archive.keep_online needs every.');
    if (archive.spread !== undefined) throw new ValidationError('audit.archive.spread needs every.');
    return {};
  }
  const everyMs = parseDuration(archive.every);
  if (everyMs < 60_000) throw new ValidationError('audit.archive.every is at least 1m.');
  // Keep at least a day online by default: recent events are what tail, export and the anomaly rules read.
  const keepOnlineMs = archive.keep_online === undefined ? 86_400_000 : parseDuration(archive.keep_online);
  if (keepOnlineMs < 60_000) throw new ValidationError('audit.archive.keep_online is at least 1m.');
  // Each run's work spread over most of the period, so it is a steady share
  // of the node rather than a dip (docs/audit.md, "Pacing"). Never the whole
  // period: a run still going when the next is due makes the next one wait a
  // period, and the backlog doubles.
  const spreadMs =
    archive.spread === undefined
      ? Math.floor(everyMs * 0.8)
      : /^0+(?:ms|s|m|h|d)?$/.test(archive.spread)
        ? 0
        : parseDuration(archive.spread);
  if (spreadMs > everyMs * 0.9)
    throw new ValidationError('audit.archive.spread is at most 90 % of every (0s: no pacing).');
  return { archiveSchedule: { everyMs, keepOnlineMs, spreadMs } };
}

/** `audit.file.max_bytes` and `audit.file.rotate_every`, checked now so a typo stops the server at start. */
function resolveAuditRotation(setting: NonNullable<ConfigFile['audit']>['file']): ServerConfig['audit']['rotation'] {
  if (typeof setting !== 'object' || setting === null) return undefined;
  const known = new Set(['path', 'max_bytes', 'rotate_every']);
  for (const key of Object.keys(setting)) {
    if (!known.has(key))
      throw new ValidationError(`audit.file.${key} is not a setting (path, max_bytes, rotate_every).`);
  }
  if (setting.path !== undefined && typeof setting.path !== 'string')
    throw new ValidationError('audit.file.path is a path.');
  const { max_bytes: maxBytes, rotate_every: every } = setting;
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 64 * 1024)) {
    throw new ValidationError('audit.file.max_bytes is a number of bytes, at least 65536.');
  }
  const everyMs = every === undefined ? undefined : parseDuration(every);
  if (everyMs !== undefined && everyMs < 60_000) throw new ValidationError('audit.file.rotate_every is at least 1m.');
  if (maxBytes === undefined && everyMs === undefined) return undefined;
  return { ...(maxBytes !== undefined ? { maxBytes } : {}), ...(everyMs !== undefined ? { everyMs } : {}) };
}

/**
 * `audit.disk_guard`: a threshold is required; the action defaults to
 * archiving early when scheduled archival is configured, else to rotating
 * early when there is a file.
 */
function resolveDiskGuard(
  guard: NonNullable<ConfigFile['audit']>['disk_guard'],
  hasFile: boolean,
  hasArchiveSchedule: boolean,
): ServerConfig['audit']['diskGuard'] {
  if (guard === undefined) return undefined;
  const { warn_free_bytes: bytes, warn_free_percent: percent, check_every: every, window, action } = guard;
  if (bytes === undefined && percent === undefined) {
    throw new ValidationError('audit.disk_guard needs warn_free_bytes or warn_free_percent.');
  }
  if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes < 1)) {
    throw new ValidationError('audit.disk_guard.warn_free_bytes is a positive number of bytes.');
  }
  if (percent !== undefined && (typeof percent !== 'number' || !(percent > 0 && percent < 100))) {
    throw new ValidationError('audit.disk_guard.warn_free_percent is between 0 and 100.');
  }
  const checkEveryMs = every === undefined ? 30_000 : parseDuration(every);
  if (checkEveryMs < 1_000 || checkEveryMs > 3_600_000) {
    throw new ValidationError('audit.disk_guard.check_every is between 1s and 1h.');
  }
  const windowMs = window === undefined ? 300_000 : parseDuration(window);
  if (windowMs < checkEveryMs) throw new ValidationError('audit.disk_guard.window is at least check_every.');
  const chosen = action ?? (hasArchiveSchedule ? 'archive-and-warn' : hasFile ? 'rotate-and-warn' : 'warn');
  if (chosen !== 'warn' && chosen !== 'rotate-and-warn' && chosen !== 'archive-and-warn') {
    throw new ValidationError('audit.disk_guard.action is warn, rotate-and-warn or archive-and-warn.');
  }
  // Archiving early archives what is older than keep_online, which only the schedule defines.
  if (chosen === 'archive-and-warn' && !hasArchiveSchedule) {
    throw new ValidationError('audit.disk_guard.action archive-and-warn needs audit.archive (every, keep_online).');
  }
  if (chosen === 'rotate-and-warn' && !hasFile) {
    throw new ValidationError('audit.disk_guard.action rotate-and-warn needs the audit file.');
  }
  return {
    ...(bytes !== undefined ? { warnFreeBytes: bytes } : {}),
    ...(percent !== undefined ? { warnFreePercent: percent } : {}),
    checkEveryMs,
    windowMs,
    action: chosen,
  };
}

/**
 * The `seal` setting: the historical strings `dev` and `shamir` (existing
 * config files keep working), the same as `{ type: … }`, or a wrapped seal's
 * section, which is kept as written for `@custos/seals` to validate (so a new
 * wrapped type needs no change here). `health_interval` is the only key this
 * layer reads from it.
 */
function resolveSeal(value: unknown): Pick<ServerConfig, 'seal' | 'sealSettings' | 'sealHealthIntervalMs'> {
  if (value === 'dev' || value === 'shamir') return { seal: value };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('seal is dev, shamir, or an object { type: … } (see docs/seals.md).');
  }
  const { type, health_interval: healthInterval, ...settings } = value as Record<string, unknown>;
  if (type === 'dev' || type === 'shamir') {
    if (Object.keys(settings).length > 0 || healthInterval !== undefined) {
      throw new ValidationError(`seal.type ${type} takes no other settings.`);
    }
    return { seal: type };
  }
  if (typeof type !== 'string' || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(type)) {
    throw new ValidationError('seal.type is dev, shamir, pkcs11, awskms or azurekeyvault.');
  }
  let sealHealthIntervalMs: number | undefined;
  if (healthInterval !== undefined) {
    sealHealthIntervalMs = typeof healthInterval === 'string' ? parseDuration(healthInterval) : Number.NaN;
    if (!(sealHealthIntervalMs >= 500 && sealHealthIntervalMs <= 3_600_000)) {
      throw new ValidationError('seal.health_interval is between 500ms and 1h.');
    }
  }
  return {
    seal: 'wrapped',
    sealSettings: { type, ...settings },
    ...(sealHealthIntervalMs !== undefined ? { sealHealthIntervalMs } : {}),
  };
}

/** The decoy database endpoint's address, when one is asked for. */
function resolveDecoyDb(text: string | undefined): Pick<ServerConfig, 'decoyDb'> {
  if (text === undefined) return {};
  const [host, port] = parseListen(text, '--decoy-db-listen');
  return { decoyDb: { host, port } };
}

/** The proxy listener's settings (see {@link ServerConfig.proxy}); limits are checked now, not at first use. */
function resolveProxy(flags: ServerFlags, file: ConfigFile, listen: string | undefined): Pick<ServerConfig, 'proxy'> {
  const text =
    flags.proxyListen ?? file.proxy?.listen ?? (flags.dev && listen === undefined ? DEFAULT_PROXY_LISTEN : undefined);
  if (text === undefined) return {};
  const [host, port] = parseListen(text, '--proxy-listen');
  const bodyLimit = file.proxy?.body_limit ?? 10 * 1024 * 1024;
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1 || bodyLimit > 1024 ** 3) {
    throw new ValidationError('proxy.body_limit is a number of bytes between 1 and 1 GiB.');
  }
  const duration = (value: string | undefined, fallback: number, what: string) => {
    const ms = value === undefined ? fallback : parseDuration(value);
    if (ms < 100 || ms > 3_600_000) throw new ValidationError(`proxy.${what} is between 100ms and 1h.`);
    return ms;
  };
  return {
    proxy: {
      host,
      port,
      bodyLimit,
      headersTimeoutMs: duration(file.proxy?.headers_timeout, 60_000, 'headers_timeout'),
      idleTimeoutMs: duration(file.proxy?.idle_timeout, 60_000, 'idle_timeout'),
    },
  };
}

/** `alerts.webhook`: checked now, so a typo stops the server at start rather than losing alerts later. */
function resolveAlertWebhook(
  webhook: NonNullable<ConfigFile['alerts']>['webhook'],
  cwd: string,
): Pick<ServerConfig, 'alertWebhook'> {
  if (webhook === undefined) return {};
  const { url, secret_file: secretFile, include = 'summary' } = webhook;
  if (typeof url !== 'string' || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new ValidationError('alerts.webhook.url is an http(s) URL.');
  }
  // The receiver authenticates custos by the signature; credentials in the URL would only leak (logs, proxies).
  if (new URL(url).username || new URL(url).password) {
    throw new ValidationError('alerts.webhook.url carries no credentials (the signature authenticates custos).');
  }
  if (typeof secretFile !== 'string')
    throw new ValidationError('alerts.webhook.secret_file names the signing key file.');
  if (include !== 'summary' && include !== 'full')
    throw new ValidationError('alerts.webhook.include is summary or full.');
  return { alertWebhook: { url, secretFile: resolve(cwd, secretFile), include } };
}

/** The egress settings; every allow entry is parsed now, so a typo stops the server at start, not at first use. */
function resolveEgress(file: ConfigFile['egress'], flags: readonly string[] = []): ServerConfig['egress'] {
  const fromFile = file?.allow ?? [];
  if (!Array.isArray(fromFile) || fromFile.some((e) => typeof e !== 'string')) {
    throw new ValidationError('egress.allow is a list of strings.');
  }
  const allow = [...new Set([...fromFile, ...flags].map((e) => e.trim()).filter(Boolean))];
  for (const entry of allow) parseEgressRule(entry);
  if (file?.allow_public !== undefined && typeof file.allow_public !== 'boolean') {
    throw new ValidationError('egress.allow_public is true or false.');
  }
  const timeoutMs = file?.timeout === undefined ? 10_000 : parseDuration(file.timeout);
  if (timeoutMs < 100 || timeoutMs > 300_000) throw new ValidationError('egress.timeout is between 100ms and 5m.');
  return { allow, allowPublic: file?.allow_public ?? true, timeoutMs };
}

function parseConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ValidationError(`Cannot read the config file ${path}.`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as ConfigFile;
  } catch {
    throw new ValidationError(`The config file ${path} is not a JSON object.`);
  }
}

export function parseListen(listen: string, flag = '--listen'): [string, number] {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[2]);
  if (!m || port > 65_535) throw new ValidationError(`${flag} is HOST:PORT.`);
  return [m[1]!.replace(/^\[|\]$/g, ''), port];
}
