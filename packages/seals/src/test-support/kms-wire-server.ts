import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySigV4 } from './sigv4-verify.js';

/** Faults the tests switch on and off while the server runs. */
export interface KmsFaults {
  /** Answer this many of the next requests with ThrottlingException (Infinity: all). */
  throttle: number;
  /** Wait this long before answering (a slow or hanging KMS). */
  delayMs: number;
  /** Answer every request with AccessDeniedException. */
  deny: boolean;
  /** Keys answered as DisabledException. */
  disabled: Set<string>;
}

/** One symmetric KMS key held by the server. */
interface ServerKey {
  readonly id: string;
  readonly arn: string;
  readonly account: string;
  readonly material: Buffer;
}

/** A running wire-compatible AWS KMS server. */
export interface KmsWireServer {
  /** `http://127.0.0.1:PORT`, for the SDK's `endpoint`. */
  readonly endpoint: string;
  readonly region: string;
  /** Credentials the server accepts (put them in the environment for the SDK's default chain). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly faults: KmsFaults;
  /** Requests received, by X-Amz-Target operation (authenticated or not). */
  readonly requests: string[];
  /** Authenticated, well-formed requests by operation and the key they named (its id; undefined when none or unknown). */
  readonly keyRequests: Array<{ readonly target: string; readonly keyId: string | undefined }>;
  /** Adds a key (in this server's account unless `account` names another); returns its id and ARN. */
  createKey(options?: { account?: string }): { id: string; arn: string };
  close(): Promise<void>;
}

const ACCOUNT = '111122223333';
const MAX_BODY = 64 * 1024;

/**
 * A local server speaking the AWS KMS JSON 1.1 protocol (`X-Amz-Target:
 * TrentService.Encrypt | Decrypt | DescribeKey`), written for the tests: the
 * real `@aws-sdk/client-kms` talks to it through its `endpoint` option, signs
 * with credentials from its default provider chain, and this server verifies
 * the AWS Signature V4 of every request before doing anything (see
 * sigv4-verify.ts). Errors have the real shape: status 400 (throttling too —
 * KMS answers ThrottlingException with 400), `x-amzn-ErrorType` and a JSON
 * body `{"__type", "message"}`.
 *
 * Ciphertexts are real AES-256-GCM under a per-key random key, with the
 * canonical encryption context as AAD and the key id inside the blob, so
 * Decrypt refuses another context (InvalidCiphertextException) and another
 * key (IncorrectKeyException) as KMS does. This is what "verified against a
 * wire-compatible local server, not against the cloud" means in the docs.
 */
export async function startKmsWireServer(options: { region?: string } = {}): Promise<KmsWireServer> {
  const region = options.region ?? 'eu-west-1';
  // Obviously fake, generated per run.
  const credentials = {
    accessKeyId: `AKIATEST${randomBytes(6).toString('hex').toUpperCase()}`,
    secretAccessKey: `test-secret-${randomBytes(18).toString('base64url')}`,
  };
  const secrets = new Map([[credentials.accessKeyId, credentials.secretAccessKey]]);
  const keys = new Map<string, ServerKey>();
  const faults: KmsFaults = { throttle: 0, delayMs: 0, deny: false, disabled: new Set() };
  const requests: string[] = [];
  const keyRequests: Array<{ target: string; keyId: string | undefined }> = [];

  const resolveKey = (keyId: unknown): ServerKey | undefined => {
    if (typeof keyId !== 'string') return undefined;
    const id = keyId.startsWith('arn:') ? keyId.split('/').pop() : keyId;
    return id === undefined ? undefined : keys.get(id);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    requests.push(target);
    const fail = (type: string, message: string, status = 400) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
      res.end(JSON.stringify({ __type: type, message }));
    };
    const verdict = verifySigV4(
      { method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body },
      secrets,
      {
        region,
        service: 'kms',
      },
    );
    if ('type' in verdict) return fail(verdict.type, verdict.message, 400);
    if (faults.delayMs > 0) await new Promise((r) => setTimeout(r, faults.delayMs));
    if (res.destroyed) return;
    if (faults.throttle > 0) {
      faults.throttle -= 1;
      return fail('ThrottlingException', 'Rate exceeded');
    }
    if (faults.deny) {
      return fail(
        'AccessDeniedException',
        `User: arn:aws:iam::${ACCOUNT}:user/test is not authorized to perform: kms:${target.split('.')[1]}`,
      );
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail('SerializationException', 'Malformed JSON');
    }
    const ok = (out: unknown) => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(out));
    };
    keyRequests.push({ target, keyId: resolveKey(input.KeyId)?.id });
    const context = canonicalContext(input.EncryptionContext);
    switch (target) {
      case 'TrentService.DescribeKey': {
        const key = resolveKey(input.KeyId);
        if (!key) return fail('NotFoundException', 'Key does not exist');
        const enabled = !faults.disabled.has(key.id);
        return ok({
          KeyMetadata: {
            AWSAccountId: key.account,
            KeyId: key.id,
            Arn: key.arn,
            Enabled: enabled,
            KeyState: enabled ? 'Enabled' : 'Disabled',
            KeyUsage: 'ENCRYPT_DECRYPT',
            KeySpec: 'SYMMETRIC_DEFAULT',
            KeyManager: 'CUSTOMER',
            Origin: 'AWS_KMS',
            EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
          },
        });
      }
      case 'TrentService.Encrypt': {
        const key = resolveKey(input.KeyId);
        if (!key) return fail('NotFoundException', 'Key does not exist');
        if (faults.disabled.has(key.id)) return fail('DisabledException', `${key.arn} is disabled.`);
        if (typeof input.Plaintext !== 'string') return fail('ValidationException', 'Plaintext is required');
        const plaintext = Buffer.from(input.Plaintext, 'base64');
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', key.material, iv);
        cipher.setAAD(Buffer.from(`${key.id}\n${context}`));
        const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
        const blob = Buffer.concat([Buffer.from(key.id, 'ascii'), iv, cipher.getAuthTag(), ct]);
        return ok({
          CiphertextBlob: blob.toString('base64'),
          KeyId: key.arn,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        });
      }
      case 'TrentService.Decrypt': {
        if (typeof input.CiphertextBlob !== 'string') return fail('ValidationException', 'CiphertextBlob is required');
        const blob = Buffer.from(input.CiphertextBlob, 'base64');
        if (blob.length < 36 + 28) return fail('InvalidCiphertextException', '');
        const key = keys.get(blob.subarray(0, 36).toString('ascii'));
        if (!key) return fail('InvalidCiphertextException', '');
        if (input.KeyId !== undefined && resolveKey(input.KeyId)?.id !== key.id) {
          return fail(
            'IncorrectKeyException',
            'The key ID in the request does not identify a CMK that can perform this operation.',
          );
        }
        if (faults.disabled.has(key.id)) return fail('DisabledException', `${key.arn} is disabled.`);
        try {
          const decipher = createDecipheriv('aes-256-gcm', key.material, blob.subarray(36, 48));
          decipher.setAuthTag(blob.subarray(48, 64));
          decipher.setAAD(Buffer.from(`${key.id}\n${context}`));
          const plaintext = Buffer.concat([decipher.update(blob.subarray(64)), decipher.final()]);
          return ok({
            KeyId: key.arn,
            Plaintext: plaintext.toString('base64'),
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          });
        } catch {
          return fail('InvalidCiphertextException', '');
        }
      }
      default:
        return fail('UnknownOperationException', '');
    }
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    credentials,
    faults,
    requests,
    keyRequests,
    createKey({ account = ACCOUNT } = {}) {
      // Another account's key stands for a cross-account key whose key
      // policy lets this account use it (as real KMS allows by ARN).
      const id = randomUUID();
      const arn = `arn:aws:kms:${region}:${account}:key/${id}`;
      keys.set(id, { id, arn, account, material: randomBytes(32) });
      return { id, arn };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The encryption context in one canonical form (sorted keys), as the AAD of the server's ciphertexts. */
function canonicalContext(context: unknown): string {
  if (typeof context !== 'object' || context === null) return '{}';
  const entries = Object.entries(context as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(entries);
}
