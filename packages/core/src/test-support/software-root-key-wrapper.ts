import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CustosError } from '../errors/index.js';
import type { RootKeyWrapper, RootKeyWrapperHealth } from '../seal/root-key-wrapper.js';

/**
 * Tests only: a {@link RootKeyWrapper} whose key-encryption key is an
 * AES-256 key in memory (real AES-GCM from node:crypto). It stands for "a
 * root of trust" in the seal manager's own tests; the real wrappers
 * (PKCS#11 against SoftHSM2, the KMS ones against their wire servers) are
 * tested in `@custos/seals`. `available = false` makes every call fail the
 * way a pulled HSM does.
 */
export class SoftwareRootKeyWrapper implements RootKeyWrapper, RootKeyWrapperHealth {
  readonly type: string;
  readonly label: string;
  readonly #kek: Buffer;
  available = true;

  constructor(label: string, kek: Buffer = randomBytes(32), type = 'software') {
    this.type = type;
    this.label = label;
    this.#kek = kek;
  }

  describe(): Readonly<Record<string, string>> {
    return { key_label: this.label };
  }

  async wrap(rootKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    this.#ensure();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#kek, iv);
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(rootKey), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]);
  }

  async unwrap(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    this.#ensure();
    const blob = Buffer.from(wrapped);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#kek, blob.subarray(0, 12));
      decipher.setAAD(aad);
      decipher.setAuthTag(blob.subarray(blob.length - 16));
      return Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]);
    } catch {
      throw new CustosError('CUSTOS_ERR_INTEGRITY');
    }
  }

  async checkHealth(): Promise<void> {
    this.#ensure();
  }

  async close(): Promise<void> {}

  #ensure(): void {
    if (!this.available) throw new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE');
  }
}
