import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
// Types only: the SDK is loaded on first use (see #sdk), so a server with
// another seal does not pay for loading it at every start.
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import { CustosError, IntegrityError, type RootKeyWrapper, type RootKeyWrapperHealth } from '@custos/core';
import { awsKmsError } from './aws-kms-errors.js';
import type { AwsKmsSealConfig } from './aws-kms-seal-config.js';

/** Bounds of one wrap or unwrap, retries included. */
export interface KmsCallLimits {
  /** Attempts of one call, the first included (SDK standard retry: exponential backoff with jitter). Default 4. */
  readonly maxAttempts?: number;
  /** Deadline of one HTTP attempt, connection included. Default 5 s. */
  readonly attemptTimeoutMs?: number;
  /** Deadline of the whole call, every retry and backoff included. Default 20 s. */
  readonly totalTimeoutMs?: number;
}

/**
 * The `awskms` seal: the root key is encrypted by an AWS KMS symmetric key
 * (Encrypt/Decrypt, `SYMMETRIC_DEFAULT`, AES-256-GCM inside KMS's HSMs),
 * which never leaves KMS.
 *
 * - Encryption context: `{ custos_cluster, purpose: 'custos-root-key',
 *   custos_aad }`. KMS binds the context as the ciphertext's AAD and
 *   writes it into CloudTrail, so every Decrypt of a root key shows which
 *   cluster asked; IAM and key policies can require it
 *   (`kms:EncryptionContext:custos_cluster`). The `aad` custos passes (the
 *   seal configuration and key identity) is bound as its SHA-256 rather than
 *   in clear: the binding is as strong, and CloudTrail gets a digest instead
 *   of custos's internal layout.
 * - Decrypt pins `KeyId` to the configured key: a stored blob that names
 *   another key (written by someone with storage access, to make custos
 *   decrypt with a key they control the policy of) is refused by KMS with
 *   IncorrectKeyException instead of being decrypted.
 * - Credentials: only the SDK's default provider chain. The wrapper never
 *   sees them and never passes them anywhere.
 * - Bounds: standard retry mode (throttling and 5xx retried with
 *   exponential backoff and jitter), at most `maxAttempts`, each attempt and
 *   the whole call under a deadline, so an unseal at start cannot hang.
 */
export class AwsKmsKeyWrapper implements RootKeyWrapper, RootKeyWrapperHealth {
  readonly type = 'awskms';
  readonly #config: AwsKmsSealConfig;
  readonly #clientConfig: KMSClientConfig;
  #loaded: Promise<{ sdk: typeof import('@aws-sdk/client-kms'); client: KMSClient }> | undefined;
  readonly #totalTimeoutMs: number;
  #probe: { plain: Buffer; ciphertext: Uint8Array } | undefined;

  constructor(config: AwsKmsSealConfig, limits: KmsCallLimits = {}) {
    this.#config = config;
    this.#totalTimeoutMs = limits.totalTimeoutMs ?? 20_000;
    const attemptTimeoutMs = limits.attemptTimeoutMs ?? 5_000;
    this.#clientConfig = {
      region: config.region,
      maxAttempts: limits.maxAttempts ?? 4,
      retryMode: 'standard',
      // throwOnRequestTimeout: an attempt past its deadline fails (and is retried)
      // instead of only being warned about while it goes on waiting.
      requestHandler: {
        connectionTimeout: attemptTimeoutMs,
        requestTimeout: attemptTimeoutMs,
        throwOnRequestTimeout: true,
      },
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    };
  }

  describe(): Readonly<Record<string, string>> {
    // Only what is configured, so the description (bound into the stored
    // root key's AAD) is the same on every start; the endpoint is left out
    // so moving to a VPC endpoint does not orphan the wrapped key.
    return { type: this.type, key_id: this.#config.keyId, region: this.#config.region };
  }

  async wrap(rootKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const out = await this.#send('Encrypt', ({ sdk, client }, abortSignal) =>
      client.send(
        new sdk.EncryptCommand({
          KeyId: this.#config.keyId,
          Plaintext: rootKey,
          EncryptionContext: this.#context(aad),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        }),
        { abortSignal },
      ),
    );
    if (!out.CiphertextBlob || out.CiphertextBlob.length === 0) {
      throw new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', 'AWS KMS Encrypt: the answer had no ciphertext.');
    }
    return out.CiphertextBlob;
  }

  async unwrap(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const out = await this.#send('Decrypt', ({ sdk, client }, abortSignal) =>
      client.send(
        new sdk.DecryptCommand({
          CiphertextBlob: wrapped,
          KeyId: this.#config.keyId,
          EncryptionContext: this.#context(aad),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        }),
        { abortSignal },
      ),
    );
    if (!out.Plaintext || out.Plaintext.length === 0) {
      throw new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', 'AWS KMS Decrypt: the answer had no plaintext.');
    }
    return out.Plaintext;
  }

  /**
   * Is the key still usable for what the next start needs — Decrypt? The
   * check decrypts a probe: random bytes encrypted once under the key with
   * `purpose: custos-seal-probe` (so a probe can never stand in for a root
   * key, whose context says `custos-root-key`). Decrypt needs no permission
   * beyond the seal's own (DescribeKey would need kms:DescribeKey, which a
   * least-privilege key policy may not grant), and it fails exactly when an
   * operator disables the key, schedules its deletion or revokes the grant.
   * One Decrypt per check: the call rate is the server's
   * `seal.health_interval` (default 5 s; a cloud seal can take 30 s).
   */
  async checkHealth(): Promise<void> {
    const context = { custos_cluster: this.#config.cluster ?? 'custos', purpose: 'custos-seal-probe' };
    if (!this.#probe) {
      const plain = randomBytes(32);
      const out = await this.#send('Encrypt', ({ sdk, client }, abortSignal) =>
        client.send(
          new sdk.EncryptCommand({ KeyId: this.#config.keyId, Plaintext: plain, EncryptionContext: context }),
          {
            abortSignal,
          },
        ),
      );
      if (!out.CiphertextBlob)
        throw new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', 'AWS KMS Encrypt: the answer had no ciphertext.');
      this.#probe = { plain, ciphertext: out.CiphertextBlob };
    }
    const probe = this.#probe;
    const out = await this.#send('Decrypt', ({ sdk, client }, abortSignal) =>
      client.send(
        new sdk.DecryptCommand({
          CiphertextBlob: probe.ciphertext,
          KeyId: this.#config.keyId,
          EncryptionContext: context,
        }),
        { abortSignal },
      ),
    );
    const plain = Buffer.from(out.Plaintext ?? []);
    if (plain.length !== probe.plain.length || !timingSafeEqual(plain, probe.plain)) throw new IntegrityError();
  }

  /**
   * rotate-seal only (needs kms:DescribeKey on the key): where the key lives,
   * as KMS itself answers — its ARN (partition, region, account) and the
   * owning account. Used to keep a rotation inside the current key's account
   * and region; never on the unseal or health path.
   */
  async describeKey(): Promise<{ arn: string; accountId: string }> {
    const out = await this.#send('DescribeKey', ({ sdk, client }, abortSignal) =>
      client.send(new sdk.DescribeKeyCommand({ KeyId: this.#config.keyId }), { abortSignal }),
    );
    const arn = out.KeyMetadata?.Arn;
    const accountId = out.KeyMetadata?.AWSAccountId;
    if (!arn || !accountId) {
      throw new CustosError(
        'CUSTOS_ERR_SEAL_UNAVAILABLE',
        'AWS KMS DescribeKey: the answer had no key ARN or account.',
      );
    }
    return { arn, accountId };
  }

  async close(): Promise<void> {
    const loaded = await this.#loaded?.catch(() => undefined);
    loaded?.client.destroy();
  }

  #context(aad: Uint8Array): Record<string, string> {
    return {
      custos_cluster: this.#config.cluster ?? 'custos',
      purpose: 'custos-root-key',
      custos_aad: createHash('sha256').update(aad).digest('hex'),
    };
  }

  async #send<T>(
    operation: string,
    call: (kms: { sdk: typeof import('@aws-sdk/client-kms'); client: KMSClient }, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      this.#loaded ??= import('@aws-sdk/client-kms').then((sdk) => ({
        sdk,
        client: new sdk.KMSClient(this.#clientConfig),
      }));
      return await call(await this.#loaded, AbortSignal.timeout(this.#totalTimeoutMs));
    } catch (error) {
      throw awsKmsError(error, operation);
    }
  }
}
