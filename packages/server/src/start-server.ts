import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  type AlertWebhookOptions,
  CustosNode,
  type CustosNodeOptions,
  EgressPolicy,
  ValidationError,
} from '@custos/core';
import { createAwsStsEngine, createEngine } from '@custos/engines';
import { createRootKeyWrapper } from '@custos/seals';
import { createSourceClientFactory } from '@custos/sources';
import { createStorage } from '@custos/storage';
import type { FastifyInstance } from 'fastify';
import pino, { type DestinationStream, type Logger } from 'pino';
import { logAlertSink } from './alerts/log-alert-sink.js';
import { buildApp } from './app.js';
import { AuditArchiveSchedule } from './audit-archive-schedule.js';
import { type DecoyDatabaseListener, startDecoyDatabaseListener } from './decoy/decoy-database-listener.js';
import { DiskGuard } from './disk-guard.js';
import { LogDestination } from './logging/log-destination.js';
import { NodeHealth } from './node-health.js';
import { type ProxyListener, startProxyListener } from './proxy/proxy-listener.js';
import { requestWebhookOptions } from './request-webhook-config.js';
import type { ServerConfig } from './server-config.js';

/**
 * The node's seal from the server config. A wrapped seal's wrapper is
 * opened here (library loaded, logged in, key checked), so a missing HSM,
 * a wrong PIN or a refused key stops the start with its error code.
 */
async function nodeSeal(config: ServerConfig): Promise<CustosNodeOptions['seal']> {
  const devKeyFile = join(config.dataDir, 'dev-seal.key');
  if (config.seal === 'dev') return { type: 'dev', keyFile: devKeyFile };
  if (config.seal === 'shamir' || config.sealSettings === undefined) return { type: 'shamir' };
  const settings = config.sealSettings;
  return {
    type: 'wrapped',
    wrapper: await createRootKeyWrapper(settings, { createKey: config.createSealKey ?? false }),
    rekey: (target) => createRootKeyWrapper(settings, { target }),
    // dev → wrapped reads the old key file once; shamir → wrapped waits for shares.
    ...(config.migrateSeal ? { migrate: { devKeyFile } } : {}),
    ...(config.sealHealthIntervalMs !== undefined ? { healthIntervalMs: config.sealHealthIntervalMs } : {}),
  };
}

/** How long in-flight requests may take to finish on shutdown before their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  app: FastifyInstance;
  /** The mTLS listener, when configured. */
  tlsApp?: FastifyInstance;
  tlsAddress?: string;
  /** The credential proxy listener, when configured (`--proxy-listen`, on by default in `--dev`). */
  proxy?: ProxyListener;
  /** The decoy database endpoint of `db-url` honeytokens, when configured (`--decoy-db-listen`). */
  decoyDb?: DecoyDatabaseListener;
  node: CustosNode;
  /** The address it listens on, e.g. `http://127.0.0.1:8420`. */
  address: string;
  /** Graceful stop: finish in-flight requests, flush audit with a checkpoint, close storage. */
  close(): Promise<void>;
}

/**
 * The process logger. Request logs carry method, URL and status, never
 * headers or bodies; the authorization header paths are censored anyway in
 * case a hook ever logs the request object.
 *
 * It writes to `destination`, by default a {@link LogDestination} on stdout:
 * one that drops (and counts) lines it cannot write rather than block the
 * process on a full disk, as pino's own synchronous writer would.
 */
export function createLogger(level: string, destination: DestinationStream = new LogDestination()): Logger {
  return pino(
    {
      level,
      redact: {
        paths: ['req.headers.authorization', 'req.headers["x-custos-token"]', 'token', '*.token'],
        censor: '[REDACTED]',
      },
    },
    destination,
  );
}

export interface StartServerOptions {
  /** The log writer, whose state `GET /v1/sys/health` reports (`log_unwritable`). */
  log?: { readonly failing: boolean };
}

/** Starts custos as `custos server` does. */
export async function startServer(
  config: ServerConfig,
  logger: Logger = createLogger(config.logLevel),
  options: StartServerOptions = {},
): Promise<RunningServer> {
  // The data directory holds the dev seal key and the root token: owner only.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  // The audit file sink of the unsealed node (reopened on SIGHUP, rotated early by the disk guard).
  const auditFile = () => (node.sealed ? undefined : node.services().auditFile);
  // Scheduled archival; the disk guard's archive-and-warn runs it early.
  const archiveSchedule = config.audit.archiveSchedule
    ? new AuditArchiveSchedule({
        ...config.audit.archiveSchedule,
        archive: (before, options) => (node.sealed ? undefined : node.services().archiveAudit(before, options)),
        log: logger,
      })
    : undefined;
  const diskGuard = config.audit.diskGuard
    ? new DiskGuard({
        ...config.audit.diskGuard,
        dir: config.audit.file ? dirname(config.audit.file) : config.dataDir,
        auditBytes: () => auditFile()?.bytesWritten,
        rotateAudit: () => auditFile()?.rotateSoon(),
        ...(archiveSchedule ? { archiveAudit: () => archiveSchedule.runOnce({ hurry: true }) } : {}),
        log: logger,
      })
    : undefined;
  // One health for every listener: they serve the same node.
  const health = new NodeHealth({
    ...(options.log ? { log: options.log } : {}),
    ...(diskGuard ? { disk: diskGuard } : {}),
  });
  // Before storage is opened: a seal that cannot open (HSM missing, wrong
  // PIN, key refused) stops the start without leaving the database locked.
  const seal = await nodeSeal(config);
  const storage = createStorage(config.storage, {
    // The server is the file's only user: the exclusive lock keeps a second
    // server off it (two would fork the audit chain) and lets it cache reads.
    // Misuse detection is for the test suites (see SqliteStorageOptions): it taxes every promise.
    sqlite: {
      synchronous: config.durability === 'power' ? 'full' : 'normal',
      exclusive: true,
      detectTransactionMisuse: false,
    },
  });
  const node = new CustosNode({
    storage,
    issuer: config.issuer,
    seal,
    audit: {
      ...(config.audit.file ? { file: config.audit.file } : {}),
      stdout: config.audit.stdout,
      fsync: config.audit.fsync,
      ...(config.audit.rotation ? { rotation: config.audit.rotation } : {}),
      archiveDir: config.audit.archiveDir,
      // Counts and names custos chose only; a logrotate rename is not custos's to name.
      onFileRotate: (event) =>
        logger.info(
          { file: event.file, ...(event.rotatedTo ? { rotated_to: basename(event.rotatedTo) } : {}) },
          'audit file rotated',
        ),
    },
    onRootToken: (token) => {
      // shamir: returned to the operator by `operator init`, nowhere else.
      // dev and wrapped seals initialise themselves at first start, with
      // nobody to hand the token to: it goes to a 0600 file in the data dir.
      if (config.seal === 'shamir') return;
      const file = join(config.dataDir, 'root-token');
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      // The token itself is never logged, only where to find it.
      logger.info({ file }, `initialised with the ${config.seal} seal; root token written`);
    },
    onAuditSinkError: (sink, error) => logger.error({ sink, err: error }, 'audit sink failed'),
    onFinding: logAlertSink(logger),
    ...(config.alertWebhook ? { alertWebhook: alertWebhookOptions(config.alertWebhook, logger) } : {}),
    ...(config.requestWebhook ? { requestWebhook: requestWebhookOptions(config.requestWebhook, logger) } : {}),
    ...(config.anomaly ? { anomaly: config.anomaly } : {}),
    // Names the rule (or `store`, `warm`) only, never event or finding contents.
    onAnomalyError: (what, error) => logger.error({ anomaly: what, err: error }, 'anomaly engine failure'),
    // The detail names seqs only (never event contents); the public status shows the code alone.
    onAuditIntegrityFailure: (error) =>
      logger.error(
        { code: error.code, detail: error.detail },
        'custos stays sealed: the audit log failed its integrity check',
      ),
    // Database engines (dynamic credentials) are drivers core never imports: wired in here.
    engineFactory: createEngine,
    awsStsEngineFactory: createAwsStsEngine,
    // Secret sources (cloud SDKs) likewise; their credentials come from the SDKs' default chains only.
    sourceFactory: createSourceClientFactory(),
    egress: new EgressPolicy({
      allow: config.egress.allow,
      allowPublic: config.egress.allowPublic,
      timeoutMs: config.egress.timeoutMs,
    }),
  });
  try {
    await node.start();
  } catch (error) {
    // Release the database lock and the HSM session: the caller may retry
    // (e.g. with --migrate-seal) in the same process.
    await node.close().catch(() => {});
    throw error;
  }
  await diskGuard?.start();
  archiveSchedule?.start();
  // logrotate renames the audit file, then sends SIGHUP: open a new one at the
  // configured path, anchored to the renamed one (see docs/audit.md).
  const onHangup = () => {
    const sink = auditFile();
    if (!sink) return;
    (async () => {
      await sink.reopen();
      // If the renamed file ends in records not yet sealed, seal them now so the reopen happens at once.
      await node.services().audit.checkpoint();
    })().catch((error: unknown) => logger.error({ err: error }, 'audit file reopen failed'));
  };
  if (config.audit.file) process.on('SIGHUP', onHangup);
  const app = await buildApp({
    node,
    logger,
    health,
    ...(diskGuard ? { diskGuard } : {}),
    ...(config.tls ? { https: { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } } : {}),
  });
  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as { port: number }).port;
  const scheme = config.tls ? 'https' : 'http';
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let tlsApp: FastifyInstance | undefined;
  let tlsAddress: string | undefined;
  if (config.tlsListen && !node.sealed) {
    // The mTLS listener needs the internal CA, which is behind the barrier:
    // it starts once unsealed (at once with the dev seal).
    let cert: { cert: string | Buffer; key: string | Buffer };
    if (config.tls) {
      cert = { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
    } else {
      const issued = await node.services().certs.issueServerCertificate({
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1', '::1'],
      });
      cert = { cert: issued.certPem, key: issued.keyPem };
      writeFileSync(join(config.dataDir, 'ca.pem'), node.services().certs.caPem, { mode: 0o644 });
    }
    tlsApp = await buildApp({ node, logger, health, https: cert });
    await tlsApp.listen({ host: config.tlsListen.host, port: config.tlsListen.port });
    const tlsPort = (tlsApp.server.address() as { port: number }).port;
    tlsAddress = `https://${config.tlsListen.host.includes(':') ? `[${config.tlsListen.host}]` : config.tlsListen.host}:${tlsPort}`;
  }
  const proxy = config.proxy
    ? await startProxyListener({
        node,
        host: config.proxy.host,
        port: config.proxy.port,
        logger,
        health,
        options: {
          bodyLimit: config.proxy.bodyLimit,
          headersTimeoutMs: config.proxy.headersTimeoutMs,
          idleTimeoutMs: config.proxy.idleTimeoutMs,
        },
      })
    : undefined;
  const decoyDb = config.decoyDb
    ? await startDecoyDatabaseListener({ node, host: config.decoyDb.host, port: config.decoyDb.port, logger })
    : undefined;
  let closing: Promise<void> | undefined;
  return {
    app,
    node,
    address: `${scheme}://${host}:${port}`,
    ...(tlsApp ? { tlsApp, tlsAddress } : {}),
    ...(proxy ? { proxy } : {}),
    ...(decoyDb ? { decoyDb } : {}),
    close: () => {
      closing ??= (async () => {
        const apps = tlsApp ? [app, tlsApp] : [app];
        // The proxy closes with the API listeners: no new call starts on a
        // closing node, and calls streaming get the same grace as requests.
        const servers = [...apps.map((a) => a.server), ...(proxy ? [proxy.server] : [])];
        const closed = Promise.all([...apps.map((a) => a.close()), proxy?.close(), decoyDb?.close()]);
        // In-flight requests finish; the keep-alive sockets they leave idle
        // are closed as soon as they are (fastify closes only those idle when
        // close begins, and would otherwise wait out the 72 s keep-alive).
        // Whatever still holds on after the grace period is cut.
        const sweep = setInterval(() => {
          for (const server of servers) server.closeIdleConnections();
        }, 25);
        const force = setTimeout(() => {
          for (const server of servers) server.closeAllConnections();
        }, SHUTDOWN_GRACE_MS);
        try {
          await closed;
        } finally {
          clearInterval(sweep);
          clearTimeout(force);
        }
        process.off('SIGHUP', onHangup);
        diskGuard?.stop();
        await archiveSchedule?.stop();
        await node.close();
      })();
      return closing;
    },
  };
}

/**
 * The webhook sink's options: the signing key read from its file now (a
 * missing or short key stops the start), and its reports logged — counts
 * and codes only, never a finding.
 */
function alertWebhookOptions(webhook: NonNullable<ServerConfig['alertWebhook']>, logger: Logger): AlertWebhookOptions {
  let secret: Buffer;
  try {
    // A trailing newline (an editor's, `echo`'s) is not part of the key.
    secret = Buffer.from(readFileSync(webhook.secretFile, 'utf8').replace(/\r?\n$/, ''), 'utf8');
  } catch {
    throw new ValidationError('alerts.webhook.secret_file cannot be read.');
  }
  if (secret.byteLength < 32) throw new ValidationError('alerts.webhook.secret_file holds at least 32 bytes.');
  return {
    url: webhook.url,
    secret,
    include: webhook.include,
    onReport: (report) =>
      report.kind === 'dropping'
        ? logger.warn(
            { webhook: report.stats },
            'alert webhook queue full: findings dropped (they stay in custos alerts list)',
          )
        : logger.warn(
            { webhook: report.stats, status: report.status, code: report.code },
            'alert webhook delivery given up',
          ),
  };
}
