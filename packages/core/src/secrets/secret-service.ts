import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { OpenedEntryMemo } from '../common/opened-entry-memo.js';
import { CustosError, NotFoundError, ValidationError } from '../errors/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import { validateSecretData } from './secret-data.js';
import { SECRET_MOUNT, validateSecretPath, validateSecretPrefix } from './secret-path.js';
import type {
  MetadataUpdate,
  PutSecretOptions,
  ReadPin,
  SecretData,
  SecretListing,
  SecretMetadata,
  SecretStages,
  SecretVersion,
  VersionMetadata,
} from './secret-types.js';

const META = 'kv.meta';
const DATA = 'kv.data';
/** `<owner task>#<path>` → the version that task tree reads (sealed). */
const PINS = 'secret.pin';
/** Versions kept per path unless configured otherwise (as in Vault's KV v2). */
export const DEFAULT_MAX_VERSIONS = 10;
const MAX_MAX_VERSIONS = 1_000;
/** Concurrent writers on PostgreSQL may race for a version number; retry that many times. */
const WRITE_ATTEMPTS = 8;
const LIST_SCAN_LIMIT = 100_000;

export interface SecretServiceDeps {
  storage: Pick<Storage, 'entries' | 'transaction'>;
  cipher: Cipher;
  now?: () => Date;
  /**
   * True for a path custos must not write because something else answers
   * its reads (a secret source mounted at `kv/<source>/`). Checked by every
   * write here — kv routes, rotation, honeytokens, imports alike — so no
   * caller can put a local version under a mount, where it would be shadowed
   * or mistaken for the cloud's value.
   */
  readOnly?: (path: string) => Promise<boolean>;
}

/** Metadata of a path that has no version yet. */
function newMetadata(path: string, time: string, actor: string): SecretMetadata {
  return {
    path,
    current_version: 0,
    oldest_version: 1,
    max_versions: DEFAULT_MAX_VERSIONS,
    cas_required: false,
    created_time: time,
    updated_time: time,
    created_by: actor,
    updated_by: actor,
    versions: {},
  };
}

// `#` is outside the path alphabet, so `path#version` cannot collide.
const dataKey = (path: string, version: number) => `${path}#${version}`;

/**
 * Versioned key/value secrets (KV v2 semantics): every write is a new
 * version; reads by version; check-and-set; soft delete, undelete and
 * destroy; bounded history per path. Values and metadata are both stored
 * through the barrier: storage sees neither the values nor who wrote them.
 */
export class SecretService {
  readonly #storage: SecretServiceDeps['storage'];
  readonly #cipher: Cipher;
  /** Metadata is read on every secret read: opened once per stored version, not decrypted every time. */
  readonly #opened = new OpenedEntryMemo();
  readonly #now: () => Date;
  readonly #readOnly: SecretServiceDeps['readOnly'];

  constructor(deps: SecretServiceDeps) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#now = deps.now ?? (() => new Date());
    this.#readOnly = deps.readOnly;
  }

  async #assertWritable(path: string): Promise<void> {
    if (this.#readOnly && (await this.#readOnly(path))) throw new CustosError('CUSTOS_ERR_SOURCE_READ_ONLY');
  }

  /** Writes a new version; returns its metadata. */
  async put(path: string, data: unknown, options: PutSecretOptions, actor: string): Promise<VersionMetadata> {
    return this.#put(path, data, options, actor, false);
  }

  /**
   * Writes a new version as the `pending` stage of a rotation: stored, but
   * reads without a version keep getting `current` until {@link promote}.
   */
  async putPending(path: string, data: unknown, actor: string): Promise<VersionMetadata> {
    return this.#put(path, data, {}, actor, true);
  }

  async #put(
    path: string,
    data: unknown,
    options: PutSecretOptions,
    actor: string,
    pending: boolean,
  ): Promise<VersionMetadata> {
    validateSecretPath(path);
    await this.#assertWritable(path);
    const value = validateSecretData(data);
    if (options.cas !== undefined && (!Number.isInteger(options.cas) || options.cas < 0)) {
      throw new ValidationError('cas is a version number, 0 to create only.');
    }
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const written = await this.#storage.transaction(async ({ entries }) => {
        const meta = await this.#readMeta(entries, path);
        const current = meta?.current_version ?? 0;
        if (options.cas === undefined && meta?.cas_required) throw new CustosError('CUSTOS_ERR_CAS_REQUIRED');
        if (options.cas !== undefined && options.cas !== current) throw new CustosError('CUSTOS_ERR_CAS_MISMATCH');
        const version = current + 1;
        // putIfAbsent makes the version number the arbiter between concurrent
        // writers (two nodes on PostgreSQL): exactly one gets each number.
        const ok = await entries.putIfAbsent(
          DATA,
          dataKey(path, version),
          sealJson(this.#cipher, DATA, dataKey(path, version), value),
        );
        if (!ok) return undefined;
        const time = this.#now().toISOString();
        const next: SecretMetadata = meta ?? newMetadata(path, time, actor);
        const versionMeta: VersionMetadata = {
          version,
          created_time: time,
          created_by: actor,
          deletion_time: null,
          destroyed: false,
        };
        next.versions[version] = versionMeta;
        if (pending) {
          if (next.stages?.pending) throw new CustosError('CUSTOS_ERR_ROTATION_IN_PROGRESS');
          next.stages = { ...stagesOf(next), pending: version };
        } else if (next.stages) {
          // A plain write to a rotated path becomes current at once.
          next.stages = { ...next.stages, current: version, previous: next.stages.current };
        }
        next.current_version = version;
        next.updated_time = time;
        next.updated_by = actor;
        await this.#prune(entries, next);
        await this.#writeMeta(entries, next);
        return versionMeta;
      });
      if (written) return written;
    }
    throw new CustosError('CUSTOS_ERR_CAS_MISMATCH', 'Too many concurrent writers.');
  }

  /**
   * Reads a version (the current one by default). With a `pin`, a read
   * without a version gets the version the pin's owner (a task tree) first
   * read, as long as that is still `current` or an unretired `previous`: a
   * rotation in the middle of a pipeline is invisible to it.
   */
  async get(path: string, version?: number, context: { pin?: ReadPin } = {}): Promise<SecretVersion> {
    validateSecretPath(path);
    const meta = await this.#readMeta(this.#storage.entries, path);
    if (!meta || meta.current_version === 0) throw new NotFoundError();
    const current = meta.stages?.current ?? meta.current_version;
    const wanted = version ?? (context.pin ? await this.pinnedVersion(meta, context.pin) : current);
    const versionMeta = meta.versions[wanted];
    if (!versionMeta) throw new CustosError('CUSTOS_ERR_VERSION_NOT_FOUND');
    if (versionMeta.destroyed) throw new CustosError('CUSTOS_ERR_VERSION_DESTROYED');
    if (versionMeta.deletion_time) throw new CustosError('CUSTOS_ERR_VERSION_DELETED');
    const blob = await this.#storage.entries.get(DATA, dataKey(path, wanted));
    // Metadata says the version is live but its value is gone: storage was
    // tampered with or lost a row. Never answer "not found" for that.
    if (!blob) throw new CustosError('CUSTOS_ERR_INTEGRITY');
    return {
      data: await openJson<SecretData>(this.#cipher, DATA, dataKey(path, wanted), blob.value),
      metadata: versionMeta,
    };
  }

  /**
   * Makes a pending version current; the old current becomes `previous`,
   * readable by pinned task trees until `graceMs` from now.
   */
  async promote(path: string, version: number, graceMs: number, actor: string): Promise<SecretStages> {
    validateSecretPath(path);
    return this.#storage.transaction(async ({ entries }) => {
      const meta = await this.#readMeta(entries, path);
      if (!meta?.versions[version]) throw new CustosError('CUSTOS_ERR_VERSION_NOT_FOUND');
      const stages = stagesOf(meta);
      if (stages.current === version) return stages; // a resumed promotion
      meta.stages = {
        current: version,
        previous: stages.current,
        pending: stages.pending === version ? null : stages.pending,
        previous_retire_time: new Date(this.#now().getTime() + graceMs).toISOString(),
      };
      meta.updated_time = this.#now().toISOString();
      meta.updated_by = actor;
      await this.#writeMeta(entries, meta);
      return meta.stages;
    });
  }

  /** Drops a pending version that failed (or was cut off by a restart): its value is destroyed; current is untouched. */
  async discardPending(path: string, version: number, actor: string): Promise<void> {
    validateSecretPath(path);
    await this.#storage.transaction(async ({ entries }) => {
      const meta = await this.#readMeta(entries, path);
      const v = meta?.versions[version];
      if (!meta || !v) return;
      if (meta.stages?.current === version) return; // already promoted: nothing to roll back
      v.destroyed = true;
      await entries.delete(DATA, dataKey(path, version));
      if (meta.stages?.pending === version) meta.stages = { ...meta.stages, pending: null };
      meta.updated_time = this.#now().toISOString();
      meta.updated_by = actor;
      await this.#writeMeta(entries, meta);
    });
  }

  /** Forgets the pins of ended task trees (the task-ended cascade hook). */
  async releasePins(owners: readonly string[]): Promise<void> {
    for (const owner of owners) {
      for (const key of await this.#storage.entries.list(PINS, `${owner}#`)) {
        await this.#storage.entries.delete(PINS, key);
      }
    }
  }

  async readMetadata(path: string): Promise<SecretMetadata> {
    validateSecretPath(path);
    const meta = await this.#readMeta(this.#storage.entries, path);
    if (!meta) throw new NotFoundError();
    return meta;
  }

  /** Creates or updates the path's settings without writing a version. */
  async writeMetadata(path: string, update: MetadataUpdate, actor: string): Promise<SecretMetadata> {
    validateSecretPath(path);
    if (update.max_versions !== undefined) {
      if (!Number.isInteger(update.max_versions) || update.max_versions < 0 || update.max_versions > MAX_MAX_VERSIONS) {
        throw new ValidationError(`max_versions is 0 (default ${DEFAULT_MAX_VERSIONS}) to ${MAX_MAX_VERSIONS}.`);
      }
    }
    await this.#assertWritable(path);
    return this.#storage.transaction(async ({ entries }) => {
      const time = this.#now().toISOString();
      const meta: SecretMetadata = (await this.#readMeta(entries, path)) ?? newMetadata(path, time, actor);
      if (update.max_versions !== undefined) meta.max_versions = update.max_versions || DEFAULT_MAX_VERSIONS;
      if (update.cas_required !== undefined) meta.cas_required = update.cas_required;
      meta.updated_time = time;
      meta.updated_by = actor;
      await this.#prune(entries, meta);
      await this.#writeMeta(entries, meta);
      return meta;
    });
  }

  /** Soft-deletes the given versions (the current one when none are given). */
  async delete(path: string, versions: readonly number[] | undefined, actor: string): Promise<number[]> {
    return this.#changeVersions(path, versions, actor, (v, time) => {
      if (!v.destroyed && !v.deletion_time) v.deletion_time = time;
    });
  }

  /** Restores soft-deleted versions. */
  async undelete(path: string, versions: readonly number[], actor: string): Promise<number[]> {
    return this.#changeVersions(path, versions, actor, (v) => {
      if (!v.destroyed) v.deletion_time = null;
    });
  }

  /** Destroys the values of the given versions for good; their metadata remains. */
  async destroy(path: string, versions: readonly number[], actor: string): Promise<number[]> {
    return this.#changeVersions(path, versions, actor, async (v, _time, entries) => {
      v.destroyed = true;
      await entries.delete(DATA, dataKey(path, v.version));
    });
  }

  /** Removes the path, every version and all metadata, permanently. */
  async deleteAll(path: string): Promise<void> {
    validateSecretPath(path);
    await this.#assertWritable(path);
    await this.#storage.transaction(async ({ entries }) => {
      const meta = await this.#readMeta(entries, path);
      if (!meta) throw new NotFoundError();
      for (const version of Object.keys(meta.versions)) await entries.delete(DATA, dataKey(path, Number(version)));
      await entries.delete(META, path);
    });
  }

  /** Every secret path (for fingerprinting), in key order, at most `limit`. */
  async paths(limit = 10_000): Promise<string[]> {
    return this.#storage.entries.list(META, `${SECRET_MOUNT}/`, { limit });
  }

  /** Lists the names directly below a prefix; folders end with `/`. */
  async list(prefix: string): Promise<SecretListing> {
    const base = validateSecretPrefix(prefix);
    const keys = new Set<string>();
    let after: string | undefined;
    let seen = 0;
    for (;;) {
      const page = await this.#storage.entries.list(META, base, { after, limit: 1_000 });
      for (const key of page) {
        const rest = key.slice(base.length);
        const slash = rest.indexOf('/');
        keys.add(slash === -1 ? rest : rest.slice(0, slash + 1));
      }
      seen += page.length;
      if (page.length < 1_000 || seen >= LIST_SCAN_LIMIT) break;
      after = page[page.length - 1];
    }
    if (keys.size === 0) throw new NotFoundError();
    return { keys: [...keys] };
  }

  async #changeVersions(
    path: string,
    versions: readonly number[] | undefined,
    actor: string,
    change: (v: VersionMetadata, time: string, entries: EntryStore) => void | Promise<void>,
  ): Promise<number[]> {
    validateSecretPath(path);
    if (versions?.some((v) => !Number.isInteger(v) || v < 1))
      throw new ValidationError('Versions are positive integers.');
    await this.#assertWritable(path);
    return this.#storage.transaction(async ({ entries }) => {
      const meta = await this.#readMeta(entries, path);
      if (!meta || meta.current_version === 0) throw new NotFoundError();
      const wanted = versions ?? [meta.current_version];
      const time = this.#now().toISOString();
      const changed: number[] = [];
      for (const version of wanted) {
        const v = meta.versions[version];
        if (!v) continue; // like Vault: unknown versions are ignored, not an error
        await change(v, time, entries);
        changed.push(version);
      }
      meta.updated_time = time;
      meta.updated_by = actor;
      await this.#writeMeta(entries, meta);
      return changed;
    });
  }

  /**
   * The version a pinned read of `meta` gets; pins the current one on first
   * read (first reader wins across nodes). Public so that a read-through
   * source (kv/<source>/…), whose stages come from the cloud, pins task trees
   * with the same rule and in the same store as local secrets.
   */
  async pinnedVersion(meta: SecretMetadata, pin: ReadPin): Promise<number> {
    return this.#pinned(meta, pin, meta.stages?.current ?? meta.current_version);
  }

  async #pinned(meta: SecretMetadata, pin: ReadPin, current: number): Promise<number> {
    const key = `${pin.owner}#${meta.path}`;
    const entries = this.#storage.entries;
    const entry = await entries.get(PINS, key);
    if (entry) {
      const { version } = await openJson<{ version: number }>(this.#cipher, PINS, key, entry.value);
      if (this.#readable(meta, version)) return version;
      // Retired (grace passed) or gone: move the pin forward rather than fail the task.
      await entries.put(PINS, key, sealJson(this.#cipher, PINS, key, { version: current }));
      return current;
    }
    if (await entries.putIfAbsent(PINS, key, sealJson(this.#cipher, PINS, key, { version: current }))) return current;
    return this.#pinned(meta, pin, current);
  }

  #readable(meta: SecretMetadata, version: number): boolean {
    const current = meta.stages?.current ?? meta.current_version;
    if (version === current) return true;
    const stages = meta.stages;
    if (!stages || stages.previous !== version) return false;
    return !stages.previous_retire_time || Date.parse(stages.previous_retire_time) > this.#now().getTime();
  }

  /** Drops the oldest versions beyond max_versions, values and metadata. */
  async #prune(entries: EntryStore, meta: SecretMetadata): Promise<void> {
    const numbers = Object.keys(meta.versions)
      .map(Number)
      .sort((a, b) => a - b);
    while (numbers.length > meta.max_versions) {
      const oldest = numbers.shift() as number;
      delete meta.versions[oldest];
      await entries.delete(DATA, dataKey(meta.path, oldest));
    }
    meta.oldest_version = numbers[0] ?? meta.current_version + 1;
  }

  async #readMeta(entries: EntryStore, path: string): Promise<SecretMetadata | undefined> {
    const entry = await entries.get(META, path);
    return entry ? await this.#opened.openJson<SecretMetadata>(this.#cipher, META, path, entry.value) : undefined;
  }

  async #writeMeta(entries: EntryStore, meta: SecretMetadata): Promise<void> {
    await entries.put(META, meta.path, sealJson(this.#cipher, META, meta.path, meta));
  }
}

function stagesOf(meta: SecretMetadata): SecretStages {
  return meta.stages ?? { current: meta.current_version, previous: null, pending: null, previous_retire_time: null };
}
