import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { ValidationError } from '../errors/index.js';
import { formatScope, parseScope } from '../policy/task-scope.js';
import type { Storage } from '../ports/storage.js';
import { ResourceNotFoundError, ResourceScopeError } from './resource-errors.js';
import type { ResourceInput, ResourceRecord, ResourceView } from './resource-types.js';
import { canonicalResourceUrl } from './resource-url.js';

const RESOURCES = 'resource';
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_DESCRIPTION = 256;

/** The policy resource managing a registered resource is authorised on (`write`, `read`, `delete`). */
export function resourceConfigResource(name: string): string {
  return `sys/resources/${name}`;
}

/**
 * The policy resource a token exchange for it is authorised on (`use`): a
 * task scope names it `use:resource/NAME`, as `use:upstream/NAME` names an upstream.
 */
export function resourceUseResource(name: string): string {
  return `resource/${name}`;
}

/** True for a well-formed resource name (a path segment of `resource/NAME` and of its metadata URL). */
export function isResourceName(name: string): boolean {
  return typeof name === 'string' && NAME.test(name);
}

export interface ResourceServiceDeps {
  storage: Pick<Storage, 'entries'>;
  cipher: Cipher;
  now?: () => Date;
}

/**
 * Registered resources (RFC 8707 resource indicators): APIs and MCP servers
 * that accept custos task tokens. A task exchanges its token for a child
 * whose `aud` is the resource's URL, and custos serves the resource's RFC
 * 9728 metadata. custos never calls a resource: registering one sends
 * nothing anywhere, so (unlike an upstream) there is no egress check and no
 * secret to guard — what it governs is which audiences custos signs.
 *
 * Records are sealed by the barrier like upstreams: the list of APIs an
 * organisation's agents call is not for someone with database access.
 */
export class ResourceService {
  readonly #storage: ResourceServiceDeps['storage'];
  readonly #cipher: Cipher;
  readonly #now: () => Date;

  constructor(deps: ResourceServiceDeps) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Adds or replaces a resource; everything is validated before anything is
   * written. Two names for one URL are refused: the token would be the same,
   * and which entry's scopes bound it would depend on listing order.
   */
  async write(name: string, input: ResourceInput): Promise<ResourceView> {
    if (!isResourceName(name)) throw new ValidationError('The resource name is 1–63 of a-z, 0-9, _ and -.');
    const url = canonicalResourceUrl(input.url);
    const scopes = validateScopes(input.scopes ?? []);
    const description = input.description;
    if (
      description !== undefined &&
      (typeof description !== 'string' ||
        description.length === 0 ||
        description.length > MAX_DESCRIPTION ||
        /[\u0000-\u001f\u007f]/.test(description))
    ) {
      throw new ValidationError(`description: 1–${MAX_DESCRIPTION} characters, no control characters.`);
    }
    const other = await this.findByUrl(url);
    if (other && other.name !== name) throw new ValidationError(`url: already registered as resource ${other.name}.`);
    const existing = await this.find(name);
    const time = this.#now().toISOString();
    const record: ResourceRecord = {
      name,
      url,
      scopes,
      ...(description !== undefined ? { description } : {}),
      created_time: existing?.created_time ?? time,
      updated_time: time,
    };
    await this.#storage.entries.put(RESOURCES, name, sealJson(this.#cipher, RESOURCES, name, record));
    return view(record);
  }

  async read(name: string): Promise<ResourceView> {
    return view(await this.get(name));
  }

  async list(): Promise<string[]> {
    return this.#storage.entries.list(RESOURCES, '');
  }

  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.#storage.entries.delete(RESOURCES, name);
  }

  async find(name: string): Promise<ResourceRecord | undefined> {
    if (!isResourceName(name)) return undefined;
    const entry = await this.#storage.entries.get(RESOURCES, name);
    return entry ? openJson<ResourceRecord>(this.#cipher, RESOURCES, name, entry.value) : undefined;
  }

  async get(name: string): Promise<ResourceRecord> {
    const record = await this.find(name);
    if (!record) throw new ResourceNotFoundError();
    return record;
  }

  /**
   * The resource registered under a canonical URL (compare
   * {@link canonicalResourceUrl} output only). A scan: resources are few
   * (an organisation's APIs, not its tasks), and a second index would be a
   * second record to keep consistent without transactions.
   */
  async findByUrl(canonicalUrl: string): Promise<ResourceRecord | undefined> {
    for (const name of await this.list()) {
      const record = await this.find(name);
      if (record?.url === canonicalUrl) return record;
    }
    return undefined;
  }

  /** Every registered resource URL (the audiences introspection accepts besides custos's own). */
  async urls(): Promise<string[]> {
    const urls: string[] = [];
    for (const name of await this.list()) {
      const record = await this.find(name);
      if (record) urls.push(record.url);
    }
    return urls;
  }
}

function validateScopes(scopes: readonly string[]): string[] {
  if (!Array.isArray(scopes)) throw new ResourceScopeError('scopes: a list of ACTION:PATTERN entries.');
  if (scopes.length === 0) return [];
  try {
    // Each entry parsed as a one-entry scope: an element holding two entries
    // ("read:a write:b") is refused rather than split.
    const entries = scopes.map((s) => {
      const parsed = parseScope(s);
      if (parsed.length !== 1 || /\s/.test(s)) throw new ValidationError('one entry per element');
      return formatScope(parsed);
    });
    return [...new Set(entries)];
  } catch {
    throw new ResourceScopeError('scopes: each is one ACTION:PATTERN entry, e.g. use:mcp/github/*.');
  }
}

function view(record: ResourceRecord): ResourceView {
  return {
    name: record.name,
    url: record.url,
    scopes: [...record.scopes],
    ...(record.description !== undefined ? { description: record.description } : {}),
    created_time: record.created_time,
    updated_time: record.updated_time,
  };
}
