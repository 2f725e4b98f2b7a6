import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { isLoopbackHost } from '../egress/loopback-host.js';
import { CustosError, isCustosError, NotFoundError, ValidationError } from '../errors/index.js';
import type { EngineService } from '../leases/engine-service.js';
import type { Storage } from '../ports/storage.js';
import type { SecretService } from '../secrets/secret-service.js';
import type { SecretData } from '../secrets/secret-types.js';
import { nextCronTime, parseCron } from './cron-schedule.js';
import type { EventBus } from './event-bus.js';
import type { RotationConfig, RotationResult, RotatorConfig } from './rotation-types.js';
import { createRotator } from './rotator.js';

const CONFIG = 'rotation.config';
/** `path` → the rotation under way `{ version, phase }`, so a restart can resume or roll back. */
const RUNNING = 'rotation.running';
/** A claim on a path's rotation, so two nodes never rotate one secret at once. */
const LOCKS = 'rotation.lock';
const LOCK_MS = 5 * 60_000;
const DEFAULT_GRACE_MS = 15 * 60_000;
const MIN_EVERY_MS = 60_000;

interface Running {
  version: number;
  /** `pending`: written, not applied; `applied`: the outside system already has it. */
  phase: 'pending' | 'applied';
}

export interface RotationServiceDeps {
  storage: Pick<Storage, 'entries' | 'transaction'>;
  cipher: Cipher;
  secrets: SecretService;
  engines: EngineService;
  events: EventBus;
  /** Where webhook rotators may call (default: the strict default policy). */
  egress?: EgressPolicy;
  now?: () => number;
}

/**
 * Staged rotation: a rotation writes a `pending` version, has the rotator
 * apply and test it (a webhook acknowledges it; a database user's new
 * password must log in), then promotes it to
 * `current`; the old current stays readable as `previous` for pinned task
 * trees until the grace deadline. A failure leaves `current` untouched and
 * says why. The phase is recorded before each step, so after a restart a
 * rotation that had not been applied is rolled back and one that had is
 * promoted.
 */
export class RotationService {
  readonly #deps: RotationServiceDeps;
  readonly #egress: EgressPolicy;
  readonly #now: () => number;

  constructor(deps: RotationServiceDeps) {
    this.#deps = deps;
    this.#egress = deps.egress ?? new EgressPolicy();
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Sets a path's rotation policy. What the rotator will reach is checked
   * now: a database rotator's user must be rotatable on its engine, a
   * webhook's URL must pass the egress policy. (Who may configure which
   * rotator is the caller's to check: see the rotation routes.)
   */
  async configure(
    path: string,
    input: { rotator: RotatorConfig; every_ms?: number | null; cron?: string | null; grace_ms?: number },
  ): Promise<RotationConfig> {
    const { rotator } = input;
    if (!['random', 'database', 'webhook'].includes(rotator.type)) throw new ValidationError('Unknown rotator type.');
    if (rotator.type === 'database') await this.#deps.engines.assertRotatable(rotator.engine, rotator.username);
    if (rotator.type === 'webhook') {
      const url = await this.#egress.checkUrl(rotator.url);
      // The receiver gets a secret value: in clear only to this host itself.
      if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
        throw new ValidationError('A webhook receives a secret value: it must use https (http only on loopback).');
      }
    }
    const every = input.every_ms ?? null;
    if (every !== null && (!Number.isInteger(every) || every < MIN_EVERY_MS)) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'Rotate at most once a minute.');
    }
    const cron = input.cron ?? null;
    if (cron !== null && every !== null) throw new ValidationError('Give --every or a cron expression, not both.');
    if (cron !== null) nextCronTime(parseCron(cron), this.#now()); // refuses a malformed or unsatisfiable one now
    const existing = await this.find(path);
    const config: RotationConfig = {
      path,
      rotator,
      every_ms: every,
      cron,
      grace_ms: input.grace_ms ?? existing?.grace_ms ?? DEFAULT_GRACE_MS,
      next_at: null,
      last_rotation: existing?.last_rotation ?? null,
      last_error: existing?.last_error ?? null,
    };
    config.next_at = this.#nextAt(config);
    await this.#writeConfig(config);
    return config;
  }

  async find(path: string): Promise<RotationConfig | undefined> {
    const entry = await this.#deps.storage.entries.get(CONFIG, path);
    return entry ? openJson<RotationConfig>(this.#deps.cipher, CONFIG, path, entry.value) : undefined;
  }

  async read(path: string): Promise<RotationConfig> {
    const config = await this.find(path);
    if (!config) throw new NotFoundError();
    return config;
  }

  /** Rotates a secret now (its policy's rotator, or a random `value` when it has none). */
  async rotate(path: string, actor: string): Promise<RotationResult> {
    const { entries } = this.#deps.storage;
    const now = this.#now();
    if (!(await entries.putIfAbsent(LOCKS, path, new Uint8Array(0), { expiresAt: now + LOCK_MS }))) {
      const lock = await entries.get(LOCKS, path);
      // A claim left by a crashed node expires; take it over then.
      if (lock?.expiresAt && lock.expiresAt > now) throw new CustosError('CUSTOS_ERR_ROTATION_IN_PROGRESS');
      await entries.put(LOCKS, path, new Uint8Array(0), { expiresAt: now + LOCK_MS });
    }
    try {
      await this.#resume(path, actor);
      return await this.#rotate(path, actor);
    } finally {
      await entries.delete(LOCKS, path);
    }
  }

  /** After a restart: finishes or rolls back rotations cut off mid-way. */
  async resumeInterrupted(actor = 'custos:rotation'): Promise<number> {
    const paths = await this.#deps.storage.entries.list(RUNNING, '');
    for (const path of paths) await this.#resume(path, actor).catch(() => undefined);
    return paths.length;
  }

  /** Runs the scheduled rotations that are due. Multi-node safe (one node claims each). */
  async rotateDue(limit = 100): Promise<number> {
    const due = await this.#deps.storage.entries.listExpired(CONFIG, this.#now(), limit);
    for (const path of due) {
      await this.rotate(path, 'custos:schedule').catch(async (error: unknown) => {
        if (isCustosError(error) && error.code === 'CUSTOS_ERR_ROTATION_IN_PROGRESS') return;
        // A rotator's failure was recorded (its own code) and rescheduled by the rotation itself.
        if (isCustosError(error) && error.code === 'CUSTOS_ERR_ROTATION_FAILED') return;
        // Recorded on the policy and rescheduled: a failing schedule never stops.
        const config = await this.find(path);
        if (config) {
          config.next_at = this.#nextAt(config);
          config.last_error = isCustosError(error) ? error.code : 'CUSTOS_ERR_INTERNAL';
          await this.#writeConfig(config);
        }
      });
    }
    return due.length;
  }

  async #rotate(path: string, actor: string): Promise<RotationResult> {
    const { secrets, engines, events, storage, cipher } = this.#deps;
    const config = await this.find(path);
    const rotator = createRotator(config?.rotator ?? { type: 'random' }, { engines, egress: this.#egress });
    let current: SecretData | undefined;
    let currentVersion: number | null = null;
    try {
      const read = await secrets.get(path);
      current = read.data;
      currentVersion = read.metadata.version;
    } catch (error) {
      if (!isCustosError(error) || error.code !== 'CUSTOS_ERR_NOT_FOUND') throw error;
    }
    const pending = await secrets.putPending(path, rotator.next(current), actor);
    const running = (phase: Running['phase']): Running => ({ version: pending.version, phase });
    await storage.entries.put(RUNNING, path, sealJson(cipher, RUNNING, path, running('pending')));
    try {
      const data = (await secrets.get(path, pending.version)).data;
      await rotator.apply(path, pending.version, data, current);
    } catch (error) {
      // Discard the pending value, unless the outside system is left using it
      // (a password that could not be put back): then it is the only copy.
      if (!(error as { pendingInEffect?: boolean }).pendingInEffect) {
        await secrets.discardPending(path, pending.version, actor);
      }
      await storage.entries.delete(RUNNING, path);
      await this.#recordOutcome(path, null, isCustosError(error) ? error.code : 'CUSTOS_ERR_ROTATION_FAILED');
      if (isCustosError(error) && error.code === 'CUSTOS_ERR_ROTATION_FAILED') throw error;
      throw new CustosError(
        'CUSTOS_ERR_ROTATION_FAILED',
        isCustosError(error) ? `The rotator failed with ${error.code}.` : undefined,
      );
    }
    await storage.entries.put(RUNNING, path, sealJson(cipher, RUNNING, path, running('applied')));
    await secrets.promote(path, pending.version, config?.grace_ms ?? DEFAULT_GRACE_MS, actor);
    await storage.entries.delete(RUNNING, path);
    await this.#recordOutcome(path, pending.version, null);
    events.publish({
      type: 'secret.rotated',
      path,
      version: pending.version,
      time: new Date(this.#now()).toISOString(),
    });
    return { path, version: pending.version, previous: currentVersion };
  }

  async #resume(path: string, actor: string): Promise<void> {
    const { storage, cipher, secrets } = this.#deps;
    const entry = await storage.entries.get(RUNNING, path);
    if (!entry) return;
    const running = await openJson<Running>(cipher, RUNNING, path, entry.value);
    if (running.phase === 'applied') {
      // The outside system already uses the new value: going back would break it.
      const config = await this.find(path);
      await secrets.promote(path, running.version, config?.grace_ms ?? DEFAULT_GRACE_MS, actor);
    } else {
      await secrets.discardPending(path, running.version, actor);
    }
    await storage.entries.delete(RUNNING, path);
  }

  async #recordOutcome(path: string, version: number | null, error: string | null): Promise<void> {
    const config = await this.find(path);
    if (!config) return;
    if (version !== null) config.last_rotation = { version, time: new Date(this.#now()).toISOString() };
    config.last_error = error;
    config.next_at = this.#nextAt(config);
    await this.#writeConfig(config);
  }

  /** The next scheduled rotation from now, or null when the policy has no schedule. */
  #nextAt(config: RotationConfig): number | null {
    if (config.every_ms) return this.#now() + config.every_ms;
    if (config.cron) return nextCronTime(parseCron(config.cron), this.#now());
    return null;
  }

  async #writeConfig(config: RotationConfig): Promise<void> {
    await this.#deps.storage.entries.put(
      CONFIG,
      config.path,
      sealJson(this.#deps.cipher, CONFIG, config.path, config),
      {
        expiresAt: config.next_at,
      },
    );
  }
}
