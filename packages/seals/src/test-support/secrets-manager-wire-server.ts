import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySigV4 } from './sigv4-verify.js';

/** Faults the tests switch on and off while the server runs. */
export interface SecretsManagerFaults {
  /** Answer this many of the next requests with ThrottlingException (Infinity: all). */
  throttle: number;
  /** Wait this long before answering (a slow or hanging service). */
  delayMs: number;
  /** Answer every request with AccessDeniedException (its message names the caller's ARN, as AWS's does). */
  deny: boolean;
}

interface StoredVersion {
  readonly id: string;
  readonly value: string;
  readonly created: number;
  stages: string[];
}

/** A running wire-compatible AWS Secrets Manager. */
export interface SecretsManagerWireServer {
  /** `http://127.0.0.1:PORT`, for the SDK's `endpoint`. */
  readonly endpoint: string;
  readonly region: string;
  /** Credentials the server accepts (put them in the environment for the SDK's default chain). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The account id the server's ARNs and error messages carry (must never reach a custos answer). */
  readonly account: string;
  readonly faults: SecretsManagerFaults;
  /** Requests received, by X-Amz-Target operation (authenticated or not). */
  readonly requests: string[];
  /** Writes a new version labelled AWSCURRENT (the old current becomes AWSPREVIOUS), as PutSecretValue does; returns its id. */
  putSecret(name: string, value: string): string;
  /** Writes a new version labelled AWSPENDING only, as a rotation's createSecret step does; returns its id. */
  stagePending(name: string, value: string): string;
  /** Moves AWSCURRENT to the pending version (the old current becomes AWSPREVIOUS), as a rotation's finishSecret does. */
  promotePending(name: string): void;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

/**
 * A local server speaking the AWS Secrets Manager JSON 1.1 protocol
 * (`X-Amz-Target: secretsmanager.GetSecretValue | ListSecrets |
 * DescribeSecret | ListSecretVersionIds`), written for the tests: the real
 * `@aws-sdk/client-secrets-manager` talks to it through its `endpoint`
 * option, signs with credentials from its default provider chain, and this
 * server verifies the AWS Signature V4 of every request (the shared
 * sigv4-verify.ts, service `secretsmanager`) before doing anything. Version
 * stages behave as AWS's: one AWSCURRENT, AWSPREVIOUS on the version it
 * replaced, AWSPENDING during a rotation; versions without a label are
 * deprecated and not listed. Errors have the real shape (status 400,
 * `x-amzn-ErrorType`, `{"__type", "Message"}`). "Verified against a
 * wire-compatible local server, not against the cloud."
 */
export async function startSecretsManagerWireServer(
  options: { region?: string } = {},
): Promise<SecretsManagerWireServer> {
  const region = options.region ?? 'eu-west-1';
  const account = '111122223333';
  // Obviously fake, generated per run.
  const credentials = {
    accessKeyId: `AKIATEST${randomBytes(6).toString('hex').toUpperCase()}`,
    secretAccessKey: `test-secret-${randomBytes(18).toString('base64url')}`,
  };
  const secrets = new Map<string, StoredVersion[]>();
  const faults: SecretsManagerFaults = { throttle: 0, delayMs: 0, deny: false };
  const requests: string[] = [];
  const arnOf = (name: string) => `arn:aws:secretsmanager:${region}:${account}:secret:${name}-AbCdEf`;
  let clock = Date.now();
  // Strictly increasing creation times, so versions written in one millisecond still order.
  const tick = () => {
    clock = Math.max(clock + 1000, Date.now());
    return clock;
  };

  const addVersion = (name: string, value: string, stages: string[]) => {
    const versions = secrets.get(name) ?? [];
    const v: StoredVersion = { id: randomUUID(), value, created: tick(), stages };
    versions.push(v);
    secrets.set(name, versions);
    return v;
  };
  const relabel = (name: string, to: StoredVersion) => {
    const versions = secrets.get(name) ?? [];
    const current = versions.find((v) => v.stages.includes('AWSCURRENT'));
    for (const v of versions) v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
    if (current && current !== to) {
      current.stages = current.stages.filter((s) => s !== 'AWSCURRENT');
      current.stages.push('AWSPREVIOUS');
    }
    to.stages = [...to.stages.filter((s) => s !== 'AWSPENDING'), 'AWSCURRENT'];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    requests.push(target);
    const fail = (type: string, message: string) => {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
      res.end(JSON.stringify({ __type: type, Message: message }));
    };
    const ok = (out: unknown) => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(out));
    };
    const verdict = verifySigV4(
      { method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body },
      new Map([[credentials.accessKeyId, credentials.secretAccessKey]]),
      { region, service: 'secretsmanager' },
    );
    if ('type' in verdict) return fail(verdict.type, verdict.message);
    if (faults.delayMs > 0) await new Promise((r) => setTimeout(r, faults.delayMs));
    if (res.destroyed) return;
    if (faults.throttle > 0) {
      faults.throttle -= 1;
      return fail('ThrottlingException', 'Rate exceeded');
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail('SerializationException', 'Malformed JSON');
    }
    const id = typeof input.SecretId === 'string' ? input.SecretId : '';
    const name = id.startsWith('arn:') ? (id.split(':secret:')[1] ?? '').replace(/-[A-Za-z0-9]{6}$/, '') : id;
    if (faults.deny) {
      return fail(
        'AccessDeniedException',
        `User: arn:aws:iam::${account}:user/custos-test is not authorized to perform: ${target.replace('.', ':')} on resource: ${arnOf(name)} because no identity-based policy allows it`,
      );
    }
    const listed = (secrets.get(name) ?? []).filter((v) => v.stages.length > 0);
    const notFound = () => fail('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    switch (target) {
      case 'secretsmanager.GetSecretValue': {
        if (listed.length === 0) return notFound();
        const stage = typeof input.VersionStage === 'string' ? input.VersionStage : 'AWSCURRENT';
        const v =
          typeof input.VersionId === 'string'
            ? listed.find((x) => x.id === input.VersionId)
            : listed.find((x) => x.stages.includes(stage));
        if (!v) return fail('ResourceNotFoundException', "Secrets Manager can't find the specified secret value.");
        return ok({
          ARN: arnOf(name),
          Name: name,
          VersionId: v.id,
          SecretString: v.value,
          VersionStages: v.stages,
          CreatedDate: v.created / 1000,
        });
      }
      case 'secretsmanager.ListSecretVersionIds': {
        if (listed.length === 0) return notFound();
        return ok({
          ARN: arnOf(name),
          Name: name,
          Versions: listed.map((v) => ({ VersionId: v.id, VersionStages: v.stages, CreatedDate: v.created / 1000 })),
        });
      }
      case 'secretsmanager.DescribeSecret': {
        if (listed.length === 0) return notFound();
        return ok({
          ARN: arnOf(name),
          Name: name,
          VersionIdsToStages: Object.fromEntries(listed.map((v) => [v.id, v.stages])),
        });
      }
      case 'secretsmanager.ListSecrets': {
        const filters = Array.isArray(input.Filters) ? (input.Filters as { Key?: string; Values?: string[] }[]) : [];
        const prefixes = filters.filter((f) => f.Key === 'name').flatMap((f) => f.Values ?? []);
        const names = [...secrets.keys()].filter(
          (n) => (prefixes.length === 0 || prefixes.some((p) => n.startsWith(p))) && secrets.get(n)?.length,
        );
        return ok({ SecretList: names.map((n) => ({ ARN: arnOf(n), Name: n })) });
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
    account,
    faults,
    requests,
    putSecret(name, value) {
      const v = addVersion(name, value, []);
      relabel(name, v);
      return v.id;
    },
    stagePending(name, value) {
      const versions = secrets.get(name) ?? [];
      for (const v of versions) v.stages = v.stages.filter((s) => s !== 'AWSPENDING');
      return addVersion(name, value, ['AWSPENDING']).id;
    },
    promotePending(name) {
      const pending = secrets.get(name)?.find((v) => v.stages.includes('AWSPENDING'));
      if (!pending) throw new Error(`no pending version of ${name}`);
      relabel(name, pending);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
