import type { AuditHmac } from '../audit/audit-hmac.js';
import type { Cipher } from '../common/cipher.js';
import { CustosError, isCustosError, NotFoundError, ValidationError } from '../errors/index.js';
import type { Storage } from '../ports/storage.js';
import { type SecretData, type SecretService, validateSecretPath } from '../secrets/index.js';
import { HoneytokenRegistry, MAX_HONEYTOKENS } from './honeytoken-registry.js';
import {
  HONEYTOKEN_KINDS,
  type HoneytokenKind,
  type HoneytokenView,
  type HoneytokenWatch,
} from './honeytoken-types.js';
import { type DecoyDatabase, generateDecoy } from './honeytoken-values.js';

export interface HoneytokenServiceDeps {
  storage: Pick<Storage, 'entries'>;
  cipher: Cipher;
  secrets: Pick<SecretService, 'put' | 'deleteAll' | 'readMetadata'>;
  /** The deployment's audit HMAC: fingerprints compare with what audit events carry (`data`). */
  hmac: AuditHmac;
  /** Scheme, host and port of a registered database engine (never its credential), for `db-url` decoys. */
  engineEndpoint?: (name: string) => Promise<DecoyDatabase>;
  now?: () => Date;
}

/** Where a `db-url` decoy points: `host` (`db.example.com:5432`) or a registered `engine`. */
export interface HoneytokenTarget {
  readonly host?: string;
  readonly engine?: string;
}

const HOST = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]{1,253}))(?::([0-9]{1,5}))?$/;

/**
 * Honeytokens: decoy secrets no legitimate workload reads. Each is an
 * ordinary secret at its path — written through the secret service like any
 * `custos secret put`, so every read, list and metadata answer is shaped
 * exactly as for a real secret — plus a sealed marker in the
 * {@link HoneytokenRegistry}, which only this service (behind `admin` on
 * `sys/honeytokens`) reads or changes. Detection uses {@link watch}.
 */
export class HoneytokenService {
  readonly #registry: HoneytokenRegistry;
  readonly #secrets: HoneytokenServiceDeps['secrets'];
  readonly #hmac: AuditHmac;
  readonly #engineEndpoint: HoneytokenServiceDeps['engineEndpoint'];
  readonly #now: () => Date;

  constructor(deps: HoneytokenServiceDeps) {
    this.#registry = new HoneytokenRegistry({ entries: deps.storage.entries, cipher: deps.cipher, hmac: deps.hmac });
    this.#secrets = deps.secrets;
    this.#hmac = deps.hmac;
    this.#engineEndpoint = deps.engineEndpoint;
    this.#now = deps.now ?? (() => new Date());
  }

  /** The kept-current view detection reads (set lookups, no storage). */
  get watch(): HoneytokenWatch {
    return this.#registry;
  }

  /** Reads the registry from storage (at unseal, and on the node's refresh tick). */
  load(): Promise<void> {
    return this.#registry.load();
  }

  /**
   * Creates a honeytoken at `path`: a fresh random decoy of `kind`, written
   * as version 1 of a new secret by `actor` (as `custos secret put` would
   * write it), and its marker. The path must not hold a secret yet: turning
   * a real secret into a decoy would trip on its legitimate readers. Returns
   * the decoy's fields once, for the admin to plant.
   */
  async create(
    path: string,
    kind: HoneytokenKind,
    target: HoneytokenTarget,
    actor: string,
  ): Promise<HoneytokenView & { data: SecretData }> {
    validateSecretPath(path);
    if (!HONEYTOKEN_KINDS.includes(kind)) throw new ValidationError(`kind is one of ${HONEYTOKEN_KINDS.join(', ')}.`);
    if (kind !== 'db-url' && (target.host !== undefined || target.engine !== undefined)) {
      throw new ValidationError('host and engine apply to db-url honeytokens only.');
    }
    if (this.#registry.hasPath(path)) throw new CustosError('CUSTOS_ERR_ALREADY_EXISTS');
    if (this.#registry.size >= MAX_HONEYTOKENS) {
      throw new ValidationError(`A deployment holds at most ${MAX_HONEYTOKENS} honeytokens.`);
    }
    // Checked before the marker goes in: a real secret's readers must never
    // trip, not even in the moment a refused creation takes to undo itself.
    if (await this.#exists(path)) throw new CustosError('CUSTOS_ERR_ALREADY_EXISTS');
    const database = kind === 'db-url' ? await this.#database(target) : undefined;
    const { data, secretFields } = generateDecoy(kind, path, database);
    const values = secretFields.map((field) => data[field] as string);
    const record = {
      path,
      kind,
      created_time: this.#now().toISOString(),
      created_by: actor,
      fingerprints: values.map((value) => this.#hmac(value)),
      lengths: [...new Set(values.map((value) => value.length))],
    };
    // The marker first: a crash between the two leaves a watched path with
    // no secret (a read answers "not found" and still trips), never a decoy
    // nobody watches.
    await this.#registry.add(record);
    try {
      // Create-only: a secret written there meanwhile is not overwritten.
      await this.#secrets.put(path, data, { cas: 0 }, actor);
    } catch (error) {
      await this.#registry.remove(path);
      if (isCustosError(error) && error.code === 'CUSTOS_ERR_CAS_MISMATCH') {
        throw new CustosError('CUSTOS_ERR_ALREADY_EXISTS');
      }
      throw error;
    }
    // The value goes back to the creating admin once, to be planted: read
    // later, even by an admin, it trips like any other read.
    return { ...view(record), data };
  }

  /** Every honeytoken (path, kind, creation): never a value or a fingerprint. */
  list(): HoneytokenView[] {
    return this.#registry.records().map(view);
  }

  /** Removes the marker and the decoy secret with every version. */
  async delete(path: string): Promise<void> {
    validateSecretPath(path);
    if (!(await this.#registry.remove(path))) throw new NotFoundError();
    try {
      await this.#secrets.deleteAll(path);
    } catch (error) {
      // Already gone (deleted as a secret): the marker was all that was left.
      if (!(isCustosError(error) && error.code === 'CUSTOS_ERR_NOT_FOUND')) throw error;
    }
  }

  async #exists(path: string): Promise<boolean> {
    try {
      await this.#secrets.readMetadata(path);
      return true;
    } catch (error) {
      if (isCustosError(error) && error.code === 'CUSTOS_ERR_NOT_FOUND') return false;
      throw error;
    }
  }

  async #database(target: HoneytokenTarget): Promise<DecoyDatabase> {
    if (target.engine !== undefined && target.host !== undefined) {
      throw new ValidationError('Give either host or engine, not both.');
    }
    if (target.engine !== undefined) {
      if (!this.#engineEndpoint) throw new ValidationError('Database engines are not available.');
      return this.#engineEndpoint(target.engine);
    }
    if (target.host === undefined) throw new ValidationError('A db-url honeytoken needs host or engine.');
    const match = HOST.exec(target.host);
    const port = match?.[3] === undefined ? 5432 : Number(match[3]);
    if (!match || port < 1 || port > 65_535) throw new ValidationError('host is HOST or HOST:PORT.');
    return { scheme: 'postgres', host: (match[1] ?? match[2]) as string, port };
  }
}

function view(record: {
  path: string;
  kind: HoneytokenKind;
  created_time: string;
  created_by: string;
}): HoneytokenView {
  return { path: record.path, kind: record.kind, created_time: record.created_time, created_by: record.created_by };
}
