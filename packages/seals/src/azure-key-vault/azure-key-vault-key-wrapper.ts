import { randomBytes, timingSafeEqual } from 'node:crypto';
// Types only: the SDKs are loaded on first use (see #client), so a server
// with another seal does not pay for loading them at every start.
import type { TokenCredential } from '@azure/identity';
import type { CryptographyClient, CryptographyClientOptions } from '@azure/keyvault-keys';
import { CustosError, IntegrityError, type RootKeyWrapper, type RootKeyWrapperHealth } from '@custos/core';
import { azureKeyVaultError } from './azure-key-vault-errors.js';
import type { AzureKeyVaultSealConfig } from './azure-key-vault-seal-config.js';
import { decodeEnvelope, encodeEnvelope, openEnvelope, sealEnvelope } from './key-vault-envelope.js';

/** Bounds of one wrap or unwrap, retries and token acquisition included. */
export interface KeyVaultCallLimits {
  /** Retries after the first attempt (throttling honours Retry-After; others back off exponentially). Default 3. */
  readonly maxRetries?: number;
  /** Deadline of one HTTP attempt. Default 5 s. */
  readonly attemptTimeoutMs?: number;
  /** Deadline of the whole call. Default 20 s. */
  readonly totalTimeoutMs?: number;
}

/**
 * What the wrapper is built from besides its config. Production passes
 * nothing: the credential is `new DefaultAzureCredential()`. Tests pass a
 * DefaultAzureCredential built with transport options for the local servers
 * (the test CA, no instance discovery) and client options that trust the
 * test CA — the chain and the SDK code paths stay the real ones.
 */
export interface AzureKeyVaultWrapperDeps {
  readonly credential?: TokenCredential;
  readonly clientOptions?: CryptographyClientOptions;
  readonly limits?: KeyVaultCallLimits;
}

const ALGORITHM = 'RSA-OAEP-256';
const DATA_KEY_BYTES = 32;

/**
 * The `azurekeyvault` seal: the root key is sealed under an RSA key in Azure
 * Key Vault (or a managed HSM) with wrapKey/unwrapKey, RSA-OAEP-256; the
 * private key never leaves the vault. Because Key Vault's wrap binds no AAD,
 * the root key is sealed in an envelope (see key-vault-envelope.ts): Key
 * Vault wraps a random data key, AES-256-GCM under that data key seals the
 * root key with the key id and custos's `aad` as associated data.
 *
 * - Credentials: DefaultAzureCredential only (environment variables →
 *   workload identity → managed identity, then developer tools; set
 *   AZURE_TOKEN_CREDENTIALS=prod to keep a server to the first three). The
 *   Key Vault client's challenge-based authentication asks for a token for
 *   the resource the vault names, and checks that the resource belongs to
 *   the vault's domain.
 * - Unwrap uses the key version recorded in the blob (so rotating the key in
 *   Key Vault does not orphan the stored root key), but only after checking
 *   that the recorded key id is this vault's, this key name's (and, when
 *   configured, this version's): the blob is in untrusted storage, and an
 *   edited key id pointing elsewhere would make custos send its bearer token
 *   to another host.
 * - Bounds: retries and each attempt under deadlines, the whole call under
 *   one abort signal, so an unseal at start cannot hang.
 */
export class AzureKeyVaultKeyWrapper implements RootKeyWrapper, RootKeyWrapperHealth {
  readonly type = 'azurekeyvault';
  readonly #config: AzureKeyVaultSealConfig;
  readonly #givenCredential: TokenCredential | undefined;
  #credential: Promise<TokenCredential> | undefined;
  readonly #clientOptions: CryptographyClientOptions;
  readonly #attemptTimeoutMs: number;
  readonly #totalTimeoutMs: number;
  readonly #clients = new Map<string, CryptographyClient>();
  #probe: { plain: Buffer; kid: string; wrapped: Uint8Array } | undefined;

  constructor(config: AzureKeyVaultSealConfig, deps: AzureKeyVaultWrapperDeps = {}) {
    this.#config = config;
    this.#givenCredential = deps.credential;
    const limits = deps.limits ?? {};
    this.#attemptTimeoutMs = limits.attemptTimeoutMs ?? 5_000;
    this.#totalTimeoutMs = limits.totalTimeoutMs ?? 20_000;
    this.#clientOptions = {
      ...deps.clientOptions,
      retryOptions: { maxRetries: limits.maxRetries ?? 3, retryDelayInMs: 250, maxRetryDelayInMs: 4_000 },
    };
  }

  describe(): Readonly<Record<string, string>> {
    return {
      type: this.type,
      vault_url: this.#config.vaultUrl,
      key_name: this.#config.keyName,
      ...(this.#config.keyVersion ? { key_version: this.#config.keyVersion } : {}),
    };
  }

  #keyId(): string {
    const version = this.#config.keyVersion ? `/${this.#config.keyVersion}` : '';
    return `${this.#config.vaultUrl}/keys/${this.#config.keyName}${version}`;
  }

  async wrap(rootKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const dataKey = randomBytes(DATA_KEY_BYTES);
    try {
      const wrapped = await this.#call('wrapKey', async (options) =>
        (await this.#client(this.#keyId())).wrapKey(ALGORITHM, dataKey, options),
      );
      // The answer names the exact version that wrapped; it is checked like a stored one before use.
      const kid = this.#checkedKid(wrapped.keyID);
      if (!wrapped.result?.length)
        throw new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', 'Azure Key Vault wrapKey: empty answer.');
      return encodeEnvelope({ ...sealEnvelope(rootKey, dataKey, aad, kid), wrappedDataKey: wrapped.result });
    } finally {
      dataKey.fill(0);
    }
  }

  async unwrap(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const envelope = decodeEnvelope(wrapped);
    const kid = this.#checkedKid(envelope.kid, true);
    const out = await this.#call('unwrapKey', async (options) =>
      (await this.#client(kid)).unwrapKey(ALGORITHM, envelope.wrappedDataKey, options),
    );
    const dataKey = Buffer.from(out.result);
    try {
      if (dataKey.length !== DATA_KEY_BYTES) throw new IntegrityError();
      return openEnvelope(envelope, dataKey, aad);
    } finally {
      dataKey.fill(0);
      out.result.fill(0);
    }
  }

  /**
   * Is the key still usable for what the next start needs — unwrapKey? A
   * random probe is wrapped once and unwrapped on each check: that needs
   * only the wrapKey/unwrapKey permissions the seal has anyway (a `get` of
   * the key would need one more), and it fails exactly when the key is
   * disabled or deleted or the identity loses its permission. One unwrapKey
   * per check: the call rate is the server's `seal.health_interval`
   * (default 5 s; Key Vault throttles per vault, so 30 s suits a shared vault).
   */
  async checkHealth(): Promise<void> {
    if (!this.#probe) {
      const plain = randomBytes(DATA_KEY_BYTES);
      const out = await this.#call('wrapKey', async (options) =>
        (await this.#client(this.#keyId())).wrapKey(ALGORITHM, plain, options),
      );
      this.#probe = { plain, kid: this.#checkedKid(out.keyID), wrapped: out.result };
    }
    const probe = this.#probe;
    const out = await this.#call('unwrapKey', async (options) =>
      (await this.#client(probe.kid)).unwrapKey(ALGORITHM, probe.wrapped, options),
    );
    if (out.result.length !== probe.plain.length || !timingSafeEqual(out.result, probe.plain))
      throw new IntegrityError();
  }

  async close(): Promise<void> {
    this.#clients.clear();
  }

  /**
   * The versioned key id, if it is this vault's and this key's (and version,
   * when pinned). A stored kid that is not gets {@link IntegrityError}
   * before any request is made.
   */
  #checkedKid(kid: string | undefined, stored = false): string {
    const fail = () =>
      stored
        ? new IntegrityError()
        : new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', 'Azure Key Vault wrapKey: the answer names another key.');
    if (typeof kid !== 'string') throw fail();
    let url: URL;
    try {
      url = new URL(kid);
    } catch {
      throw fail();
    }
    const m = /^\/keys\/([A-Za-z0-9-]{1,127})\/([0-9a-f]{32})$/.exec(url.pathname);
    if (url.origin !== this.#config.vaultUrl || url.search || url.hash || !m || m[1] !== this.#config.keyName)
      throw fail();
    if (this.#config.keyVersion && m[2] !== this.#config.keyVersion) throw fail();
    return `${url.origin}${url.pathname}`;
  }

  async #client(keyId: string): Promise<CryptographyClient> {
    let client = this.#clients.get(keyId);
    if (!client) {
      this.#credential ??= this.#givenCredential
        ? Promise.resolve(this.#givenCredential)
        : import('@azure/identity').then(({ DefaultAzureCredential }) => new DefaultAzureCredential());
      const credential = await this.#credential;
      const { CryptographyClient } = await import('@azure/keyvault-keys');
      client = this.#clients.get(keyId) ?? new CryptographyClient(keyId, credential, this.#clientOptions);
      this.#clients.set(keyId, client);
    }
    return client;
  }

  async #call<T>(
    operation: 'wrapKey' | 'unwrapKey',
    call: (options: { abortSignal: AbortSignal; requestOptions: { timeout: number } }) => Promise<T>,
  ): Promise<T> {
    try {
      return await call({
        abortSignal: AbortSignal.timeout(this.#totalTimeoutMs),
        requestOptions: { timeout: this.#attemptTimeoutMs },
      });
    } catch (error) {
      throw azureKeyVaultError(error, operation);
    }
  }
}
