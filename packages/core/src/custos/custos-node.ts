import { type KeyObject, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import {
  type AccessRequestNotice,
  AccessRequestService,
  type ActiveElevation,
  authorizeElevated,
  ElevationIndex,
  requestConsoleLink,
  SCOPE_DEFAULT_DENY,
} from '../access-requests/index.js';
import {
  type AlertWebhookOptions,
  AlertWebhookSink,
  type AnomalyConfig,
  type AnomalyEngine,
  AnomalyReplayer,
  type AnomalyService,
  type Finding,
  FindingStore,
  type QuarantineConfig,
  startAnomalyService,
} from '../anomaly/index.js';
import {
  type AuditArchivePace,
  type AuditArchiveRunResult,
  type AuditFileRotation,
  AuditFileSink,
  type AuditHmac,
  AuditLog,
  type AuditSink,
  AuditStdoutSink,
  type AuditVerifyReport,
  createAuditHmac,
  runAuditArchive,
  verifyAudit,
} from '../audit/index.js';
import { AwsIamMethodService, CertService, JwtMethodService } from '../auth-methods/index.js';
import { EgressPolicy } from '../egress/index.js';
import { AuditIntegrityError, CustosError, SealedError, ValidationError } from '../errors/index.js';
import { HoneytokenService } from '../honeytokens/index.js';
import { StorageDpopReplayCache, verifyDpopProof } from '../identity/index.js';
import { EngineService, LeaseService } from '../leases/index.js';
import {
  type AuthzDecision,
  type PolicyAction,
  PolicyEngine,
  parseScope,
  type ScopeEntry,
  scopeAllows,
} from '../policy/index.js';
import type { AwsStsEngineFactory } from '../ports/aws-sts-engine-port.js';
import type { DatabaseEngineFactory } from '../ports/database-engine-port.js';
import type { Storage } from '../ports/storage.js';
import { ResourceService } from '../resources/index.js';
import { EventBus, RotationService } from '../rotation/index.js';
import { type RootKeyWrapperTarget, SealManager, type SealStatus } from '../seal/index.js';
import { SecretService } from '../secrets/index.js';
import { type SourceClientFactory, SourceService } from '../sources/index.js';
import { TaskSigningKeys } from '../task-tokens/index.js';
import { BootstrapService, RoleService, TaskService } from '../tasks/index.js';
import { TokenService } from '../tokens/index.js';
import { UpstreamService } from '../upstreams/index.js';
import { loadAuditKeys } from './audit-keys.js';
import { PolicyService } from './policy-service.js';
import type { Principal } from './principal.js';
import { type AuthenticateContext, PrincipalAuthenticator } from './principal-authenticator.js';
import { loadOrCreateSysKey } from './sys-keys.js';
import { createTaskMinter } from './task-minter.js';
import { type SealAuditDetails, WrappedSeal, type WrappedSealOptions } from './wrapped-seal.js';

export interface CustosNodeOptions {
  storage: Storage;
  /**
   * `dev`: auto-initialise and auto-unseal with a key file. `shamir`: wait
   * for `operator init` / `unseal`. `wrapped`: auto-initialise and
   * auto-unseal with a root of trust (see {@link WrappedSealOptions}).
   */
  seal: { type: 'dev'; keyFile: string } | { type: 'shamir' } | WrappedSealOptions;
  audit?: {
    /** A JSON-lines file sink, besides the database. */
    file?: string;
    fsync?: 'always' | 'never';
    /** Also write every record to stdout. */
    stdout?: boolean;
    checkpointEvery?: number;
    checkpointIntervalMs?: number;
    /** Rotate the file by size and/or age (each new file anchored to the one before). */
    rotation?: AuditFileRotation;
    /** Told when the file was rotated or reopened (its new number; the name it was rotated to, when custos named it). */
    onFileRotate?: (event: { readonly rotatedTo?: string; readonly file: number }) => void;
    /** Where archives are written (docs/audit.md, "Archival"); archival is off without it. */
    archiveDir?: string;
  };
  /** This deployment's token issuer (`iss`), normally its external URL; DPoP proofs name URLs below it. */
  issuer?: string;
  /** SPIFFE trust domain of the internal CA (default `custos.local`). */
  trustDomain?: string;
  /** Called once with the root token created at initialisation; it is never logged or stored in clear. */
  onRootToken?: (token: string) => Promise<void> | void;
  /** Told about sink failures (never event contents). */
  onAuditSinkError?: (sink: string, error: unknown) => void;
  /**
   * Told when the node stays sealed, or seals itself, because its audit log
   * failed its integrity check (at unseal, or found tampered while running).
   * The error's code is `CUSTOS_ERR_AUDIT_INTEGRITY`; its message names seqs
   * only. `status()` reports the code until an unseal succeeds.
   */
  onAuditIntegrityFailure?: (error: AuditIntegrityError) => void;
  version?: string;
  /** Opens database engines (normally `createEngine` from `@custos/engines`); without it engines are unavailable. */
  engineFactory?: DatabaseEngineFactory;
  /** Opens `aws-sts` engines (normally `createAwsStsEngine` from `@custos/engines`). */
  awsStsEngineFactory?: AwsStsEngineFactory;
  /** Opens secret-source clients (normally `createSourceClient` from `@custos/sources`); without it sources are unavailable. */
  sourceFactory?: SourceClientFactory;
  /**
   * The one egress policy every outbound call obeys (engines, JWKS, webhook
   * rotators). Default: public destinations only — loopback, link-local and
   * private ranges refused.
   */
  egress?: EgressPolicy;
  /** The anomaly engine over the audit stream (default: on, every rule with its defaults). */
  anomaly?: AnomalyConfig;
  /** Tests: waits between attempts of a quarantine action (default 0.5 s, 2 s, 8 s). */
  anomalyActionRetryMs?: readonly number[];
  /**
   * Told when an anomaly rule throws or goes over its budget of findings (`rule:<name>`), a finding cannot be
   * stored (`store`), history cannot be read at start (`warm`) or the rules
   * fall behind and events are dropped (`queue`) — never event or finding contents.
   */
  onAnomalyError?: (what: string, error: unknown) => void;
  /** Told of each finding once it is stored (the log alert sink). The explanation may quote secret paths. */
  onFinding?: (finding: Finding) => void;
  /** The webhook alert sink: findings POSTed, signed, through the egress policy (an operator's setting). */
  alertWebhook?: AlertWebhookOptions;
  /**
   * The access-request webhook (`requests.webhook`): each new request
   * POSTed, signed like the alert webhook, with a link to the console.
   */
  requestWebhook?: Omit<AlertWebhookOptions<AccessRequestNotice>, 'format' | 'userAgent'>;
}

export interface AuthorizeContext {
  sourceIp?: string;
  now?: Date;
}

/** {@link SealStatus} plus why the node stays sealed although its seal opened (a stable error code; nothing secret). */
export type NodeStatus = SealStatus & { readonly reason?: string };

/** What exists only while unsealed. */
export interface CustosServices {
  secrets: SecretService;
  tokens: TokenService;
  policies: PolicyService;
  audit: AuditLog;
  /** The audit file sink, when configured (reopened on SIGHUP, rotated early by the disk guard). */
  auditFile?: AuditFileSink;
  /** HMAC of a value with the audit key (`POST /v1/audit/hash`). */
  auditHmac: AuditHmac;
  auditPublicKeys: ReadonlyMap<string, KeyObject>;
  storage: Storage;
  roles: RoleService;
  tasks: TaskService;
  bootstrap: BootstrapService;
  taskKeys: TaskSigningKeys;
  jwtMethods: JwtMethodService;
  awsMethods: AwsIamMethodService;
  certs: CertService;
  /** Configured database engines and their roles. */
  engines: EngineService;
  /** Dynamic credentials leased to tasks. */
  leases: LeaseService;
  /** Staged rotation of secrets (pending → current → previous). */
  rotation: RotationService;
  /** Change events for subscribers (`GET /v1/events`). */
  events: EventBus;
  /** APIs the credential proxy calls with a secret the caller never holds. */
  upstreams: UpstreamService;
  /** AWS Secrets Manager and Azure Key Vault mounted read-through at `kv/<source>/…`. */
  sources: SourceService;
  /** Registered RFC 8707 resources: the audiences a token exchange may name. */
  resources: ResourceService;
  /** Stored findings of the anomaly engine (`/v1/alerts`). */
  alerts: FindingStore;
  /** The anomaly engine, when enabled: subscribe to findings, read its counts. */
  anomaly: AnomalyEngine | undefined;
  /** The quarantine actions per rule and their severity floor (`custos alerts rules` shows them). */
  anomalyActions: QuarantineConfig | undefined;
  /** Runs the node's rules over stored history without acting (`custos alerts replay`). */
  alertReplay: AnomalyReplayer;
  /** Decoy secrets and their sealed registry (`/v1/honeytokens`, `admin` on `sys/honeytokens`). */
  honeytokens: HoneytokenService;
  /** Just-in-time access requests and the elevations they grant (`/v1/requests`, docs/jit.md). */
  requests: AccessRequestService;
  issuer: string;
  authenticator: PrincipalAuthenticator;
  /** Operator token or task token → principal; UnauthenticatedError otherwise. */
  authenticate(credential: string, context: AuthenticateContext): Promise<Principal>;
  authorize(principal: Principal, action: PolicyAction, path: string, context: AuthorizeContext): AuthzDecision;
  verifyAudit(): Promise<AuditVerifyReport>;
  /**
   * Archives the records sealed by a checkpoint signed before `before` into
   * the configured archive directory and removes them from the database
   * (docs/audit.md, "Archival"). One run at a time on this node. With
   * `pace` (the schedule's runs) the run spreads its work over time; a run
   * asked for without one (an operator, the disk guard) hurries a paced run
   * in progress, so it is not left waiting out that run's pace.
   */
  archiveAudit(before: Date, options?: { pace?: AuditArchivePace }): Promise<AuditArchiveRunResult>;
  /** The configured archive directory (server configuration; never from a request). */
  auditArchiveDir: string | undefined;
}

/** Audience of task tokens: custos itself; downstream services may accept it too. */
export const TASK_TOKEN_AUDIENCE = 'custos';

const REAP_INTERVAL_MS = 5_000;
/** The key task accessors are computed with (see TaskAccessors), in the `sys` namespace. */
const TASK_ACCESSOR_KEY = 'task.accessor-key';
const POLICY_REFRESH_MS = 1_000;

/**
 * One custos node: storage, the seal lifecycle and, while unsealed, the
 * domain services. The HTTP layer talks only to this object.
 */
export class CustosNode {
  readonly version: string;
  readonly #options: CustosNodeOptions;
  readonly #seals: SealManager;
  #services: CustosServices | undefined;
  /** Why the last unseal left the node sealed (or why it sealed itself), until an unseal succeeds. */
  #refusal: AuditIntegrityError | undefined;
  #reaper: NodeJS.Timeout | undefined;
  #policyRefresh: NodeJS.Timeout | undefined;
  #anomaly: AnomalyService | undefined;
  #requestWebhook: AlertWebhookSink<AccessRequestNotice> | undefined;
  /** Wrapped seals: auto-unseal, rotate-seal and the health watch of the root of trust. */
  readonly #wrapped: WrappedSeal | undefined;

  constructor(options: CustosNodeOptions) {
    this.#options = options;
    this.version = options.version ?? '0.1.0';
    this.#seals = new SealManager(options.storage.entries);
    this.#seals.onUnseal(() => this.#load());
    this.#seals.onSeal(() => this.#unload());
    if (options.seal.type === 'wrapped') {
      this.#wrapped = new WrappedSeal(options.seal, {
        seals: this.#seals,
        isUnsealed: () => !this.sealed,
        audit: (kind, extra) => this.#auditSystem(kind, extra),
        issueRootToken: () => this.#issueRootToken(),
      });
    }
  }

  /**
   * The error a refused request gets while sealed: `CUSTOS_ERR_SEAL_UNAVAILABLE`
   * when the node sealed itself because its root of trust went away (so a
   * client sees why), else `CUSTOS_ERR_SEALED`.
   */
  sealedError(): CustosError {
    // The code only: requests refused while sealed are answered before any
    // authentication, so the detail (a token label, a CKR name) stays out.
    const fault = this.#wrapped?.faultCode();
    return fault !== undefined ? new CustosError(fault) : new SealedError();
  }

  /** Sealed until every service has loaded: the HTTP layer serves nothing else before. */
  get sealed(): boolean {
    return this.#services === undefined;
  }

  /** The unsealed services; SealedError otherwise. */
  services(): CustosServices {
    if (!this.#services) throw new SealedError();
    return this.#services;
  }

  /**
   * Starts the node: with the dev seal, initialises on first start and
   * unseals. An audit log that fails its integrity check does not stop the
   * start: the node stays sealed, says why in {@link status}, and tells
   * `onAuditIntegrityFailure`.
   */
  async start(): Promise<void> {
    await this.#options.storage.migrate();
    if (this.#wrapped) {
      await this.#wrapped.start();
      return;
    }
    if (this.#options.seal.type === 'dev') {
      try {
        const { initialized } = await this.#seals.startDev(this.#options.seal.keyFile);
        if (initialized) await this.#issueRootToken();
      } catch (error) {
        // Stay up, sealed: the operator must see why (status, log) and resolve it.
        if (!(error instanceof AuditIntegrityError)) throw error;
      }
    }
  }

  /** Seal status, and the reason the node stays sealed when its audit log failed its integrity check. */
  async status(): Promise<NodeStatus> {
    return this.#withReason(await this.#seals.status());
  }

  /** Every seal status this node answers carries the reason it stays sealed, if it has one. */
  #withReason(status: SealStatus): NodeStatus {
    const fault = this.#wrapped?.faultCode();
    if (status.sealed && fault !== undefined) return { ...status, reason: fault };
    return status.sealed && this.#refusal ? { ...status, reason: this.#refusal.code } : status;
  }

  /** `operator init` for the shamir seal: returns the shares and the root token, once. */
  async initialize(request: {
    shares?: number;
    threshold?: number;
  }): Promise<{ shares?: string[]; root_token: string }> {
    // An initialised node says so whatever its seal: "already done" is the
    // answer an anonymous caller gets, never a hint about the seal type.
    if ((await this.#seals.status()).initialized) throw new CustosError('CUSTOS_ERR_ALREADY_INITIALIZED');
    if (this.#options.seal.type !== 'shamir') throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
    const { shares } = await this.#seals.initialize({
      type: 'shamir',
      shares: request.shares ?? 5,
      threshold: request.threshold ?? 3,
    });
    // Initialisation leaves the barrier unsealed just long enough to create
    // the root token; then it is sealed until the operators bring shares.
    const root = await this.#issueRootToken();
    await this.#seals.seal();
    return { ...(shares ? { shares } : {}), root_token: root };
  }

  async submitUnsealShare(share: string): Promise<NodeStatus> {
    const status = await this.#seals.submitUnsealShare(share);
    await this.#wrapped?.afterShare(status);
    return this.#withReason(status);
  }

  /**
   * Discards the unseal shares submitted so far. Only while sealed: on an
   * unsealed node it is refused (`CUSTOS_ERR_NOT_SEALED`) — it is a public
   * operation and must never seal (see SealManager.resetUnseal).
   */
  async resetUnseal(): Promise<NodeStatus> {
    return this.#withReason(await this.#seals.resetUnseal());
  }

  seal(): Promise<void> {
    // An operator's seal holds: the health check must not unseal it again.
    this.#wrapped?.operatorSealed();
    return this.#seals.seal();
  }

  /**
   * `rotate-seal`: re-wraps the root key under another key of the same root
   * of trust, with no downtime (see SealManager.rotateWrapper for the
   * crash-safe ordering). The operator then switches the server config to
   * the new key; the next start retires the old wrapping.
   */
  async rotateSeal(target: RootKeyWrapperTarget): Promise<{ generation: number; sealKey: Record<string, string> }> {
    this.services();
    if (this.#wrapped === undefined) throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
    return this.#wrapped.rotate(target);
  }

  rotateKeyring(): Promise<{ term: number }> {
    this.services();
    return this.#seals.rotateKeyring();
  }

  /** Flushes audit (with a final checkpoint) and closes storage. */
  async close(): Promise<void> {
    await this.#wrapped?.stopWatch();
    await this.#unload();
    await this.#wrapped?.close();
    await this.#options.storage.close();
  }

  /** A `system` audit event about the seal (nothing secret: kinds and error codes only). */
  async #auditSystem(kind: string, extra: { error_code?: string; details?: SealAuditDetails }): Promise<void> {
    const services = this.#services;
    if (services === undefined) return;
    await services.audit.record({ type: 'system', kind, ...extra });
  }

  async #issueRootToken(): Promise<string> {
    const { token } = await this.services().tokens.create({ policies: [], root: true, displayName: 'root' });
    await this.#options.onRootToken?.(token);
    return token;
  }

  /** Loads the services; an audit integrity failure is remembered as the reason to stay sealed. */
  async #load(): Promise<void> {
    try {
      await this.#loadServices();
      this.#refusal = undefined;
    } catch (error) {
      if (error instanceof AuditIntegrityError) this.#refuse(error);
      throw error;
    }
  }

  #refuse(error: AuditIntegrityError): void {
    this.#refusal = error;
    try {
      this.#options.onAuditIntegrityFailure?.(error);
    } catch {
      // Reporting must not change the outcome: the node is sealed either way.
    }
  }

  async #loadServices(): Promise<void> {
    const { storage } = this.#options;
    const cipher = this.#seals.barrier;
    const chainStarted =
      (await storage.audit.head()) !== undefined || (await storage.audit.lastCheckpoint()) !== undefined;
    const keys = await loadAuditKeys(storage.entries, cipher, { chainStarted });
    const sinks: AuditSink[] = [];
    const auditOptions = this.#options.audit ?? {};
    let auditFile: AuditFileSink | undefined;
    if (auditOptions.file) {
      auditFile = await AuditFileSink.open({
        path: auditOptions.file,
        fsync: auditOptions.fsync ?? 'always',
        // The checkpoint key signs each new file's anchor.
        signer: keys.signer,
        ...(auditOptions.rotation ? { rotation: auditOptions.rotation } : {}),
        ...(auditOptions.onFileRotate ? { onRotate: auditOptions.onFileRotate } : {}),
      });
      sinks.push(auditFile);
    }
    if (auditOptions.stdout) sinks.push(new AuditStdoutSink());
    const audit = await AuditLog.open({
      store: storage.audit,
      sinks,
      signer: keys.signer,
      publicKeys: keys.publicKeys,
      ...(auditOptions.checkpointEvery ? { checkpointEvery: auditOptions.checkpointEvery } : {}),
      ...(auditOptions.checkpointIntervalMs ? { checkpointIntervalMs: auditOptions.checkpointIntervalMs } : {}),
      ...(this.#options.onAuditSinkError ? { onSinkError: this.#options.onAuditSinkError } : {}),
      // Tampering found while running: stop serving (nothing can be audited
      // honestly any more) and say why, as at start.
      onIntegrityFailure: (error) => {
        this.#refuse(error);
        this.#seals.seal().catch(() => undefined);
      },
    });
    const engine = await PolicyEngine.create();
    const policies = new PolicyService({ storage, cipher, engine });
    await policies.load();
    const tokens = new TokenService({ storage, cipher });
    const roles = new RoleService({ storage, cipher });
    const taskKeys = await TaskSigningKeys.load(storage.entries, cipher);
    const issuer = this.#options.issuer ?? 'http://127.0.0.1:8420';
    const tasks = new TaskService({
      storage,
      cipher,
      roles,
      minter: createTaskMinter(taskKeys, { issuer, audience: TASK_TOKEN_AUDIENCE }),
      accessorKey: await loadOrCreateSysKey(storage.entries, cipher, TASK_ACCESSOR_KEY, () => randomBytes(32)),
    });
    const bootstrap = new BootstrapService({ storage, cipher });
    // A DPoP proof is single-use across every node on this database and
    // across restarts: its jti is recorded in storage, where one insert decides.
    const dpopReplay = new StorageDpopReplayCache(storage.entries);
    // On PostgreSQL other nodes revoke too: an elevation is confirmed in
    // storage before each use. The embedded SQLite file has one writer, this
    // node, whose index every revocation updates at once (see ElevationIndex).
    const elevations = new ElevationIndex({ entries: storage.entries, cipher, confirm: storage.dialect !== 'sqlite' });
    await elevations.load();
    const authenticator = new PrincipalAuthenticator({
      elevations,
      tokens,
      tasks,
      roles,
      keys: taskKeys,
      issuer,
      audience: TASK_TOKEN_AUDIENCE,
      dpop: async (proof, { method, url, accessToken }) =>
        (await verifyDpopProof(proof, { method, url, accessToken, replay: dpopReplay })).jkt,
    });
    const egress = this.#options.egress ?? new EgressPolicy();
    const jwtMethods = new JwtMethodService({ storage, cipher, egress });
    const awsMethods = new AwsIamMethodService({ storage, cipher, egress });
    const certs = await CertService.load({ storage, cipher }, this.#options.trustDomain ?? 'custos.local');
    const engines = new EngineService({
      storage,
      cipher,
      factory: this.#options.engineFactory,
      awsFactory: this.#options.awsStsEngineFactory,
      egress,
    });
    const leases = new LeaseService({ storage, cipher, engines, tasks });
    // Ending or revoking a task (or its expiry) drops every database user of its subtree.
    // Set once the sources exist (they read pins and listings through the secrets).
    let mounts: SourceService | undefined;
    const secrets = new SecretService({
      storage,
      cipher,
      readOnly: async (path) => (await mounts?.mountOf(path)) !== undefined,
    });
    const auditHmac = createAuditHmac(keys.hmacKey);
    // Loaded before the anomaly engine resumes, so touches of a honeytoken
    // recorded while the node was down are judged against the registry.
    const honeytokens = new HoneytokenService({
      storage,
      cipher,
      secrets,
      hmac: auditHmac,
      engineEndpoint: (name) => engines.endpoint(name),
    });
    await honeytokens.load();
    // Wired before the anomaly engine starts: a quarantine action that
    // revokes a tree (even one resumed at start) drops its leases like any revocation.
    tasks.onTaskEnded(async ({ rootId, prefix }) => {
      await leases.revokeForSubtree(prefix);
      // Pins are owned by root tasks, so only the end of a root releases any.
      await secrets.releasePins([rootId]);
    });
    const events = new EventBus();
    // Task lifecycle on the event stream (operators only, see events-routes.ts).
    tasks.onTaskChange(({ change, task }) =>
      events.publish({
        type: `task.${change}`,
        path: `sys/tasks/${task.id}`,
        task_id: task.id,
        parent_id: task.parent_id,
        chain: [...task.chain],
        role: task.role,
        time: new Date().toISOString(),
      }),
    );
    const requestWebhookOptions = this.#options.requestWebhook;
    this.#requestWebhook = requestWebhookOptions
      ? new AlertWebhookSink<AccessRequestNotice>(egress, {
          ...requestWebhookOptions,
          userAgent: 'custos-requests',
          // The reason (the agent's own text) stays out: the approver reads it in the console, behind sign-in.
          format: (notice) => ({
            type: notice.type,
            request: notice,
            console_url: requestConsoleLink(issuer, notice.id),
          }),
        })
      : undefined;
    const requestWebhook = this.#requestWebhook;
    const requests = new AccessRequestService({
      storage,
      cipher,
      tasks,
      roles,
      elevations,
      events,
      ...(requestWebhook ? { notify: requestWebhook.offer } : {}),
      // Operator identities are `token:<accessor>`; tasks have no creator chain of tokens.
      lineage: async (name) =>
        name.startsWith('token:') ? (await tokens.lineage(name.slice(6))).map((a) => `token:${a}`) : [name],
    });
    const alerts = new FindingStore({ entries: storage.entries, cipher });
    this.#anomaly = await startAnomalyService({
      audit,
      auditStore: storage.audit,
      alerts,
      events,
      egress,
      roles,
      tasks,
      ...(this.#options.anomalyActionRetryMs ? { actionRetryMs: this.#options.anomalyActionRetryMs } : {}),
      ...(this.#options.anomaly ? { config: this.#options.anomaly } : {}),
      ...(this.#options.onAnomalyError ? { report: this.#options.onAnomalyError } : {}),
      ...(this.#options.onFinding ? { onFinding: this.#options.onFinding } : {}),
      ...(this.#options.alertWebhook ? { webhook: this.#options.alertWebhook } : {}),
      honeytokens: honeytokens.watch,
    });
    const anomaly = this.#anomaly?.engine;
    const alertReplay = new AnomalyReplayer({
      store: storage.audit,
      ...(this.#options.anomaly ? { config: this.#options.anomaly } : {}),
      // Declared hours as the live rules see them (none when the engine is off).
      ...(this.#anomaly ? { context: this.#anomaly.ruleContext } : {}),
    });
    const rotation = new RotationService({ storage, cipher, secrets, engines, events, egress });
    const sources = new SourceService({
      storage,
      cipher,
      secrets,
      egress,
      events,
      factory: this.#options.sourceFactory,
    });
    mounts = sources;
    // An upstream's key may be held in a cloud source: its reference reads
    // through the mount as a kv read does (same pin, same version rules).
    const upstreams = new UpstreamService({
      storage,
      cipher,
      secrets: {
        get: async (path, version, context) =>
          (await sources.mountOf(path))
            ? sources.readSecret(path, version, context)
            : secrets.get(path, version, context),
      },
      egress,
    });
    const resources = new ResourceService({ storage, cipher });
    const scopes = new Map<string, ScopeEntry[]>();
    const parsedScope = (scope: string): ScopeEntry[] => {
      let parsed = scopes.get(scope);
      if (!parsed) {
        parsed = parseScope(scope);
        if (scopes.size > 10_000) scopes.clear();
        scopes.set(scope, parsed);
      }
      return parsed;
    };
    let archiving: Promise<unknown> = Promise.resolve();
    // The paced run in progress, if any (see archiveAudit).
    let pacing: AuditArchivePace | undefined;
    this.#services = {
      secrets,
      tokens,
      policies,
      audit,
      ...(auditFile ? { auditFile } : {}),
      auditHmac,
      auditPublicKeys: keys.publicKeys,
      storage,
      roles,
      tasks,
      bootstrap,
      taskKeys,
      jwtMethods,
      awsMethods,
      certs,
      engines,
      leases,
      rotation,
      events,
      upstreams,
      sources,
      resources,
      alerts,
      anomaly,
      anomalyActions: this.#options.anomaly?.actions,
      alertReplay,
      honeytokens,
      requests,
      issuer,
      authenticator,
      authenticate: (credential, context) => authenticator.authenticate(credential, context),
      authorize: (principal, action, path, context) => {
        const ctx = {
          ...(context.now ? { now: context.now } : {}),
          ...(context.sourceIp ? { sourceIp: context.sourceIp } : {}),
        };
        if (principal.kind === 'operator') {
          const { token } = principal;
          // The root token bypasses policy; its use is still audited, with
          // `auth.root: true` on the event, by the audit plugin.
          if (token.root) return { allowed: true, reasons: ['root'] };
          return engine.authorize({
            principal: { type: 'Token', id: token.accessor },
            policies: token.policies,
            action,
            path,
            context: ctx,
          });
        }
        // A task may do only what its scope names AND its role's policies
        // permit: the scope narrows the role's grant, never widens it, so a
        // child (whose scope is a subset of its parent's) can never do what
        // its parent could not.
        const { task, role, labels } = principal;
        const cedar = (elevation?: ActiveElevation) =>
          engine.authorize({
            principal: {
              type: 'Task',
              id: task.task_id,
              // Labels as "k=v" strings: `principal.labels.contains("team=search")`.
              attrs: {
                role: role.name,
                depth: task.depth,
                labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`),
              },
              // `principal in Custos::Identity::"<sub>"` and `principal in
              // Custos::Task::"<ancestor>"` both hold for a task, so rules on
              // an identity or a subtree apply to every delegated child.
              parents: [
                { type: 'Identity' as const, id: task.sub },
                ...task.chain.slice(0, -1).map((id) => ({ type: 'Task' as const, id })),
              ],
            },
            policies: role.policies,
            action,
            path,
            context: {
              ...ctx,
              depth: task.depth,
              taskChain: task.chain,
              ...(elevation ? { elevation: { requestId: elevation.request_id, scope: elevation.scope } } : {}),
            },
          });
        const base = scopeAllows(parsedScope(task.scope), action, path) ? cedar() : SCOPE_DEFAULT_DENY;
        if (base.allowed || !principal.elevations) return base;
        // A forbid (or a failed one) that refused the task as it is refuses
        // it elevated too: an approval lifts the default deny, never a forbid.
        if (base.reasons.length > 0 || (base.errors?.length ?? 0) > 0) return base;
        return authorizeElevated(principal.elevations, role, action, path, parsedScope, cedar) ?? base;
      },
      auditArchiveDir: auditOptions.archiveDir,
      archiveAudit: (before, { pace } = {}) => {
        const dir = auditOptions.archiveDir;
        if (!dir) return Promise.reject(new ValidationError('audit archival is not configured (audit.archive.dir).'));
        // Registered when asked for, not when it starts: an operator run that
        // arrives while the paced run still waits its turn hurries it too.
        if (pace) pacing = pace;
        else pacing?.hurry();
        // Runs one after another: two runs at once would write the same archive number.
        const run = archiving.then(async () => {
          await mkdir(dir, { recursive: true, mode: 0o700 });
          // Archiving up to now: seal what is written so far, so the archive can reach it.
          if (before.getTime() > Date.now()) await audit.checkpoint();
          return runAuditArchive({
            store: storage.audit,
            signer: keys.signer,
            dir,
            before,
            ...(auditOptions.file ? { onlineFile: auditOptions.file } : {}),
            ...(pace ? { pace } : {}),
          }).finally(() => {
            if (pacing === pace) pacing = undefined;
          });
        });
        archiving = run.catch(() => undefined);
        return run;
      },
      verifyAudit: () =>
        verifyAudit(storage.audit, {
          publicKeys: keys.publicKeys,
          ...(auditOptions.checkpointEvery ? { defaultEvery: auditOptions.checkpointEvery } : {}),
        }),
    };
    // A cascade interrupted by a crash resumes here.
    await tasks.runCascades();
    // So is a rotation cut off mid-way: rolled back, or promoted if already applied.
    await rotation.resumeInterrupted();
    let reaping = false;
    this.#reaper = setInterval(() => {
      // A round that outlasts the interval (a backlog of expired tasks after
      // downtime) is not joined by a second one on the same node.
      if (reaping) return;
      reaping = true;
      // A part that fails (a storage hiccup) is retried next round; expired
      // tokens are refused on use anyway, reaping only frees space.
      void Promise.allSettled([
        tokens.reapExpired(),
        tasks.reapExpired(),
        bootstrap.reapExpired(),
        taskKeys.prune(),
        dpopReplay.reapExpired(),
        leases.reapExpired(),
        rotation.rotateDue(),
        requests.sweep(),
      ]).then(() => {
        reaping = false;
      });
    }, REAP_INTERVAL_MS);
    this.#reaper.unref();
    this.#policyRefresh = setInterval(() => {
      // Another node's policy change takes effect here within a second.
      policies.refresh().catch(() => undefined);
      // So is a honeytoken created or deleted there (one scan of a small namespace).
      honeytokens.load().catch(() => undefined);
      // And an elevation approved there (revocations there hold at once: see ElevationIndex).
      elevations.refresh().catch(() => undefined);
    }, POLICY_REFRESH_MS);
    this.#policyRefresh.unref();
  }

  async #unload(): Promise<void> {
    const services = this.#services;
    this.#services = undefined;
    if (this.#reaper) clearInterval(this.#reaper);
    if (this.#policyRefresh) clearInterval(this.#policyRefresh);
    this.#reaper = undefined;
    services?.taskKeys.forget();
    await services?.engines.close();
    await services?.audit.close();
    // After the audit log: its last batches go through the rules and their findings are stored.
    await this.#anomaly?.stop(this.#seals.barrier.sealed);
    this.#anomaly = undefined;
    await this.#requestWebhook?.close();
    this.#requestWebhook = undefined;
  }
}
