import { createHash, randomBytes, webcrypto } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * An agent's DPoP key (RFC 9449): Ed25519, generated in this process, its
 * private half not extractable — it can sign proofs but never be exported,
 * printed or sent. A task bound to it (`cnf.jkt`) is useless without it: a
 * stolen token cannot be replayed, by custos or by a tool that checks the
 * proof.
 */
export class DpopKey {
  /** RFC 7638 thumbprint of the public key: what custos puts in the token's `cnf.jkt`. */
  readonly jkt: string;
  readonly #keys: CryptoKeyPair;
  readonly #encodedHeader: string;

  private constructor(keys: CryptoKeyPair, x: string) {
    this.#keys = keys;
    // RFC 7638: the required members, in lexicographic order, no whitespace.
    this.jkt = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
    const header = { typ: 'dpop+jwt', alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x } };
    this.#encodedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  }

  /** A fresh key. */
  static async generate(): Promise<DpopKey> {
    const keys = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const jwk = await webcrypto.subtle.exportKey('jwk', keys.publicKey);
    if (typeof jwk.x !== 'string') throw new TypeError('Ed25519 public key without x');
    return new DpopKey(keys, jwk.x);
  }

  /**
   * A proof for one request (RFC 9449 §4.2): `htm`, `htu` (without query or
   * fragment), `iat`, a fresh random `jti` (a proof is single-use, so a
   * retried request gets a new one), and `ath`, the hash of the access token
   * it accompanies.
   */
  async proof(method: string, url: string, accessToken: string): Promise<string> {
    const htu = new URL(url);
    htu.search = '';
    htu.hash = '';
    const payload = {
      jti: randomBytes(16).toString('base64url'),
      htm: method,
      htu: htu.href,
      iat: Math.floor(Date.now() / 1000),
      ath: createHash('sha256').update(accessToken).digest('base64url'),
    };
    const input = `${this.#encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const signature = await webcrypto.subtle.sign({ name: 'Ed25519' }, this.#keys.privateKey, Buffer.from(input));
    return `${input}.${Buffer.from(signature).toString('base64url')}`;
  }

  /** Nothing of the key, for logs. */
  toJSON(): Record<string, unknown> {
    return { jkt: this.jkt };
  }
}
