import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { CustosError, NotFoundError } from '../errors/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import type { EventBus } from '../rotation/event-bus.js';
import type { SecretService } from '../secrets/secret-service.js';
import type { ReadPin, SecretMetadata, SecretVersion, VersionMetadata } from '../secrets/secret-types.js';
import { SourceCache } from './source-cache.js';
import { validateSourceInput } from './source-config.js';
import { sourceMountPrefix, splitMountedPath, validateSourceName } from './source-name.js';
import { callSource } from './source-retry.js';
import type {
  SourceClient,
  SourceClientFactory,
  SourceInput,
  SourceRecord,
  SourceValue,
  SourceVersionInfo,
  SourceView,
} from './source-types.js';
import { sourceValueToData } from './source-value.js';

const SOURCES = 'source';
/** `<source>#<cloud name>` → the custos version number of each cloud version id (sealed). */
const VERSIONS = 'source.version';
const AZURE_NAME = /^[0-9A-Za-z-]{1,127}$/;
/** AWS secret names: 1–512 of letters, digits and /_+=.@- . */
const AWS_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const MAX_LIST = 10_000;
const MOUNT_CACHE_MS = 5_000;

interface VersionNumbers {
  next: number;
  ids: Record<string, number>;
  /** The cloud version id last seen as current: a change is a rotation done by the cloud. */
  current?: string;
}

export interface SourceServiceDeps {
  storage: Pick<Storage, 'entries' | 'transaction'>;
  cipher: Cipher;
  secrets: Pick<SecretService, 'pinnedVersion' | 'list'>;
  /** Opens cloud clients (normally `createSourceClient` from `@custos/sources`); without it sources are unavailable. */
  factory?: SourceClientFactory;
  egress?: EgressPolicy;
  /** Told of a rotation done by the cloud (its current version moved), as `secret.rotated`. */
  events?: Pick<EventBus, 'publish'>;
  now?: () => Date;
}

/** A secret read through a source: what a kv read answers, plus the source's name for the audit event. */
export interface SourceRead extends SecretVersion {
  source: string;
}

/**
 * Secret sources: AWS Secrets Manager and Azure Key Vault mounted
 * read-through at `kv/<source>/…`. Configuration is stored sealed by the
 * barrier; cloud credentials are never part of it (see source-config.ts).
 *
 * A read of `kv/<source>/<name>` is authorised, pinned and audited by the
 * same route, plugins and rules as any kv read; here the cloud's versions
 * become custos versions:
 * - each cloud version id gets a custos version number the first time it is
 *   seen (1, 2, 3… per secret, stored sealed, never reused), so `?version=N`
 *   and pins work as for local secrets;
 * - the cloud's stage labels become custos stages (AWSCURRENT → current,
 *   AWSPREVIOUS → previous, AWSPENDING → pending; Azure: the newest enabled
 *   active version is current, the one before it previous, a newer one not
 *   yet active (`nbf` in the future) pending). A rotation done by the cloud
 *   is therefore a staged rotation to custos: a task tree pinned to the old
 *   version keeps reading it while the cloud still labels it previous.
 *   The grace period is the cloud's: when AWS moves AWSPREVIOUS on, the
 *   pin moves forward to current, as a retired local version does.
 *
 * Listings and values are cached per node for the source's TTL (0–300 s);
 * `refresh` drops a source's cache on this node.
 */
export class SourceService {
  readonly #deps: SourceServiceDeps;
  readonly #egress: EgressPolicy;
  readonly #now: () => Date;
  /** Which names are mounted, remembered briefly: every kv request asks, and other nodes may add or delete sources. */
  readonly #records = new SourceCache<SourceRecord | null>();
  readonly #clients = new Map<string, SourceClient>();
  readonly #listings = new SourceCache<SourceVersionInfo[]>();
  readonly #values = new SourceCache<SourceValue>();

  constructor(deps: SourceServiceDeps) {
    this.#deps = deps;
    this.#egress = deps.egress ?? new EgressPolicy();
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Adds or replaces a source. The endpoint is checked against the egress
   * policy now (CUSTOS_ERR_EGRESS_REFUSED), not at the first read; a mount
   * over secrets custos already holds at `kv/<name>/` is refused, so a
   * source can never shadow (or be shadowed by) local secrets.
   */
  async write(name: string, input: SourceInput): Promise<SourceView> {
    validateSourceName(name);
    const existing = await this.find(name);
    const record = validateSourceInput(name, input, this.#now().toISOString(), existing?.created_time) as SourceRecord;
    const url = record.endpoint ?? record.vault_url ?? `https://secretsmanager.${record.region}.amazonaws.com`;
    await this.#egress.checkUrl(url, ['https:', 'http:']);
    if (!existing && (await this.#hasLocalSecrets(name))) throw new CustosError('CUSTOS_ERR_SOURCE_MOUNT_CONFLICT');
    await this.#deps.storage.entries.put(SOURCES, name, sealJson(this.#deps.cipher, SOURCES, name, record));
    this.#forget(name);
    return view(record);
  }

  async read(name: string): Promise<SourceView> {
    return view(await this.get(name));
  }

  async list(): Promise<string[]> {
    return this.#deps.storage.entries.list(SOURCES, '');
  }

  /**
   * Deletes a source: `kv/<name>/…` reads fail from now on. The version
   * numbers are kept, so a source re-added under the same name never gives
   * an old number (held by a pin) to another cloud version.
   */
  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.#deps.storage.entries.delete(SOURCES, name);
    this.#forget(name);
  }

  /** Drops this node's cached listings and values of a source. */
  async refresh(name: string): Promise<{ dropped: number }> {
    await this.get(name);
    const dropped = this.#listings.dropPrefix(`${name}#`) + this.#values.dropPrefix(`${name}#`);
    return { dropped };
  }

  async find(name: string): Promise<SourceRecord | undefined> {
    validateSourceName(name);
    const entry = await this.#deps.storage.entries.get(SOURCES, name);
    return entry ? openJson<SourceRecord>(this.#deps.cipher, SOURCES, name, entry.value) : undefined;
  }

  async get(name: string): Promise<SourceRecord> {
    const record = await this.find(name);
    if (!record) throw new CustosError('CUSTOS_ERR_SOURCE_NOT_FOUND');
    return record;
  }

  /**
   * The source a (validated) secret path is mounted from, if any. Looked up
   * in storage and remembered for {@link MOUNT_CACHE_MS} (this node's own
   * writes and deletes take effect at once; another node's within that
   * time), because every kv request asks.
   */
  async mountOf(path: string): Promise<SourceRecord | undefined> {
    const split = splitMountedPath(path);
    if (!split) return undefined;
    let record = this.#records.get(split.source);
    if (record === undefined) {
      record = (await this.find(split.source)) ?? null;
      this.#records.set(split.source, record, MOUNT_CACHE_MS);
    }
    return record ?? undefined;
  }

  /** Reads `kv/<source>/<name>` from the source: a version, the pinned one, or current. */
  async readSecret(path: string, version?: number, context: { pin?: ReadPin } = {}): Promise<SourceRead> {
    const { record, name } = await this.#locate(path);
    const meta = await this.#metadata(record, name, path);
    const wanted =
      version ?? (context.pin ? await this.#deps.secrets.pinnedVersion(meta, context.pin) : meta.stages!.current);
    const versionMeta = meta.versions[wanted];
    const id = versionMeta ? idOf(meta, wanted) : undefined;
    if (!versionMeta || id === undefined) throw new CustosError('CUSTOS_ERR_VERSION_NOT_FOUND');
    const value = await this.#value(record, name, id);
    return { data: sourceValueToData(value, record.format), metadata: versionMeta, source: record.name };
  }

  /** The metadata a kv metadata read answers for a mounted path: versions and stages as custos numbers them. */
  async readMetadata(path: string): Promise<SecretMetadata & { source: string }> {
    const { record, name } = await this.#locate(path);
    const meta = await this.#metadata(record, name, path);
    const { ids: _ids, ...rest } = meta as SecretMetadata & { ids?: unknown };
    return { ...rest, source: record.name };
  }

  /** Names below a source's mount (the source's prefix removed), for `secret list` and import. */
  async listSecrets(name: string, limit = MAX_LIST): Promise<string[]> {
    const record = await this.get(name);
    const client = this.#client(record);
    return callSource(record.name, record.timeout_ms, (signal) => client.list(Math.min(limit, MAX_LIST), signal));
  }

  /**
   * Copies the current version of every secret of a source (or of those
   * below `names`) into custos's own kv at `<destination>/<name>`: a
   * one-time import, after which the copies are ordinary local secrets.
   * `allowed` is the caller's permission check per (source path,
   * destination path): refused names are skipped and reported, never read.
   */
  async importSecrets(
    name: string,
    destination: string,
    write: (path: string, data: Record<string, string>) => Promise<void>,
    allowed: (sourcePath: string, destinationPath: string) => boolean,
  ): Promise<{ imported: string[]; refused: string[]; failed: { path: string; code: string }[] }> {
    const record = await this.get(name);
    const names = await this.listSecrets(name);
    const imported: string[] = [];
    const refused: string[] = [];
    const failed: { path: string; code: string }[] = [];
    for (const cloudName of names) {
      const sourcePath = `${sourceMountPrefix(record.name)}${cloudName}`;
      const target = `${destination}/${cloudName}`;
      if (!allowed(sourcePath, target)) {
        refused.push(sourcePath);
        continue;
      }
      try {
        const { data } = await this.readSecret(sourcePath);
        await write(target, data);
        imported.push(target);
      } catch (error) {
        failed.push({ path: sourcePath, code: error instanceof CustosError ? error.code : 'CUSTOS_ERR_INTERNAL' });
      }
    }
    return { imported, refused, failed };
  }

  async #hasLocalSecrets(name: string): Promise<boolean> {
    try {
      return (await this.#deps.secrets.list(sourceMountPrefix(name))).keys.length > 0;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async #locate(path: string): Promise<{ record: SourceRecord; name: string }> {
    const record = await this.mountOf(path);
    const split = splitMountedPath(path);
    if (!record || !split) throw new CustosError('CUSTOS_ERR_SOURCE_NOT_FOUND');
    // Azure secret names are one segment of letters, digits and `-`: any
    // other kv path below the mount cannot name one.
    if (record.type === 'azure-key-vault' && !AZURE_NAME.test(split.rest)) throw new NotFoundError();
    // Likewise a kv path with characters AWS names cannot have (`,` `~`): nothing to ask for.
    const name = `${record.prefix}${split.rest}`;
    if (record.type === 'aws-secrets-manager' && !AWS_NAME.test(name)) throw new NotFoundError();
    return { record, name };
  }

  #client(record: SourceRecord): SourceClient {
    let client = this.#clients.get(record.name);
    if (!client) {
      if (!this.#deps.factory) {
        throw new CustosError('CUSTOS_ERR_SOURCE_UNAVAILABLE', 'This server was started without secret sources.');
      }
      client = this.#deps.factory(record, { egress: this.#egress });
      this.#clients.set(record.name, client);
    }
    return client;
  }

  async #metadata(record: SourceRecord, name: string, path: string): Promise<SecretMetadata & { ids: string[] }> {
    const key = `${record.name}#${name}`;
    let listing = this.#listings.get(key);
    if (!listing) {
      const client = this.#client(record);
      listing = await callSource(record.name, record.timeout_ms, (signal) => client.versions(name, signal));
      this.#listings.set(key, listing, record.cache_ttl_seconds * 1000);
    }
    if (listing.length === 0) throw new NotFoundError();
    const numbers = await this.#numbers(key, listing, path);
    const versions: Record<string, VersionMetadata> = {};
    const ids: string[] = [];
    const stages = { current: 0, previous: null as number | null, pending: null as number | null };
    for (const v of listing) {
      const n = numbers.ids[v.id] as number;
      ids[n] = v.id;
      versions[n] = {
        version: n,
        created_time: v.created_time,
        created_by: `source:${record.name}`,
        deletion_time: null,
        destroyed: false,
      };
      if (v.stage) stages[v.stage] = n;
    }
    // No version labelled current (an AWS secret mid-way through its first
    // rotation has only AWSPENDING): nothing is served rather than a guess.
    if (stages.current === 0) throw new NotFoundError();
    const time = listing.map((v) => v.created_time).sort();
    return {
      path,
      current_version: Math.max(...Object.keys(versions).map(Number)),
      oldest_version: Math.min(...Object.keys(versions).map(Number)),
      max_versions: listing.length,
      cas_required: false,
      created_time: time[0] as string,
      updated_time: time.at(-1) as string,
      created_by: `source:${record.name}`,
      updated_by: `source:${record.name}`,
      versions,
      stages: { ...stages, previous_retire_time: null },
      ids,
    };
  }

  /**
   * Gives every cloud version id of a listing its custos number; new ids get
   * the next numbers, oldest first. When the cloud's current version has
   * moved since custos last looked, that is a rotation done by the cloud:
   * `secret.rotated` is published to this node's subscribers (once: the
   * node whose transaction records the move), as for a custos rotation.
   */
  async #numbers(key: string, listing: SourceVersionInfo[], path: string): Promise<VersionNumbers> {
    const cipher = this.#deps.cipher;
    const currentId = listing.find((v) => v.stage === 'current')?.id;
    const open = async (entries: Pick<EntryStore, 'get'>) => {
      const entry = await entries.get(VERSIONS, key);
      return entry ? await openJson<VersionNumbers>(cipher, VERSIONS, key, entry.value) : { next: 1, ids: {} };
    };
    const known = await open(this.#deps.storage.entries);
    if (listing.every((v) => known.ids[v.id] !== undefined) && known.current === currentId) return known;
    let rotated: number | undefined;
    const stored = await this.#deps.storage.transaction(async ({ entries }) => {
      const numbers = await open(entries);
      const fresh = listing
        .filter((v) => numbers.ids[v.id] === undefined)
        .sort((a, b) => (a.created_time < b.created_time ? -1 : a.created_time > b.created_time ? 1 : 0));
      for (const v of fresh) numbers.ids[v.id] = numbers.next++;
      // Only live versions are kept: a version the cloud dropped keeps its
      // number retired (`next` never goes back), so the map stays bounded.
      const live = new Set(listing.map((v) => v.id));
      for (const id of Object.keys(numbers.ids)) if (!live.has(id)) delete numbers.ids[id];
      if (numbers.current !== undefined && currentId !== undefined && numbers.current !== currentId) {
        rotated = numbers.ids[currentId];
      }
      if (currentId !== undefined) numbers.current = currentId;
      await entries.put(VERSIONS, key, sealJson(cipher, VERSIONS, key, numbers));
      return numbers;
    });
    if (rotated !== undefined) {
      this.#deps.events?.publish({ type: 'secret.rotated', path, version: rotated, time: this.#now().toISOString() });
    }
    return stored;
  }

  async #value(record: SourceRecord, name: string, id: string): Promise<SourceValue> {
    const key = `${record.name}#${name}#${id}`;
    const cached = this.#values.get(key);
    if (cached) return cached;
    const client = this.#client(record);
    const value = await callSource(record.name, record.timeout_ms, (signal) => client.read(name, id, signal));
    this.#values.set(key, value, record.cache_ttl_seconds * 1000);
    return value;
  }

  #forget(name: string): void {
    this.#records.dropPrefix(name);
    this.#clients.get(name)?.close?.();
    this.#clients.delete(name);
    this.#listings.dropPrefix(`${name}#`);
    this.#values.dropPrefix(`${name}#`);
  }
}

function idOf(meta: SecretMetadata & { ids?: string[] }, version: number): string | undefined {
  return meta.ids?.[version];
}

function view(record: SourceRecord): SourceView {
  const { tls_ca, ...rest } = record;
  return { ...rest, ...(tls_ca ? { tls_ca: true as const } : {}) };
}
