import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySigV4 } from './sigv4-verify.js';

/** Faults the tests switch on and off while the server runs. */
export interface StsFaults {
  /** Answer this many of the next STS calls with Throttling (Infinity: all). */
  throttle: number;
  /** Wait this long before answering (a slow or hanging STS). */
  delayMs: number;
  /** Answer AssumeRole with AccessDenied. */
  denyAssumeRole: boolean;
  /** Answer PutRolePolicy with AccessDenied. */
  denyPutRolePolicy: boolean;
}

/** One AssumeRole the server granted, as the tests assert on it. */
export interface RecordedAssumeRole {
  readonly callerAccessKeyId: string;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly sourceIdentity: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly policy: string | undefined;
  readonly durationSeconds: number;
  readonly accessKeyId: string;
}

/** An IAM principal the server knows, with credentials it accepts. */
export interface TestPrincipal {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly arn: string;
  readonly account: string;
}

interface Role {
  readonly name: string;
  readonly arn: string;
  readonly id: string;
  readonly account: string;
  readonly maxSessionDuration: number;
  readonly inline: Map<string, string>;
}

interface Session extends TestPrincipal {
  readonly role: Role;
  readonly sessionName: string;
  readonly sourceIdentity: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

/** A running wire-compatible AWS STS + IAM server. */
export interface StsWireServer {
  /** `http://127.0.0.1:PORT`: the STS and the IAM endpoint (one server speaks both). */
  readonly endpoint: string;
  readonly region: string;
  readonly account: string;
  /** The principal custos itself runs as (put it in the environment for the SDK's default chain). */
  readonly engineCredentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly faults: StsFaults;
  readonly assumeRoleCalls: RecordedAssumeRole[];
  /** Every GetCallerIdentity the server answered, with the headers it verified. */
  readonly callerIdentityCalls: Array<{ readonly arn: string; readonly headers: Record<string, string> }>;
  /** Adds an IAM role custos may assume; returns its ARN. */
  addRole(name: string, options?: { maxSessionDuration?: number }): string;
  /** Adds an IAM user (in `account`, default the server's) with an access key. */
  addUser(name: string, options?: { account?: string }): TestPrincipal;
  /** The inline policies of a role, by name (what PutRolePolicy wrote). */
  rolePolicies(name: string): ReadonlyMap<string, string>;
  close(): Promise<void>;
}

const ACCOUNT = '111122223333';
const MAX_BODY = 64 * 1024;
const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
/** AWS's bounds for AssumeRole's DurationSeconds. */
const MIN_DURATION = 900;
const MAX_DURATION = 43_200;

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const requestId = () => randomBytes(16).toString('hex');

/**
 * A local server speaking the AWS STS and IAM Query protocols
 * (form-encoded `Action=…&Version=…`, XML answers), written for the tests:
 * the real `@aws-sdk/client-sts` and `@aws-sdk/client-iam` talk to it through
 * their `endpoint` option, and every request's AWS Signature V4 is verified
 * first with the shared verifier (sigv4-verify.ts), session credentials with
 * their `X-Amz-Security-Token`.
 *
 * What it implements, as AWS documents it:
 * - `sts:AssumeRole`: DurationSeconds 900..43200 and at most the role's
 *   MaxSessionDuration (ValidationError otherwise); RoleSessionName and
 *   SourceIdentity shapes; session tags and the session policy recorded for
 *   assertions; the credentials it returns are accepted on later requests.
 * - `sts:GetCallerIdentity`: the caller's ARN (`assumed-role/<role>/<session>`
 *   for a session). Like AWS, it is never denied by a policy.
 * - `iam:PutRolePolicy` / `iam:GetRolePolicy`: inline role policies.
 * - `iam:GetRole`: the "further signed request" of the tests. Called with a
 *   role session's credentials, it is refused (AccessDenied) when a Deny
 *   statement of that role's inline policies matches the session — the
 *   conditions custos writes: `StringEquals` on `aws:PrincipalTag/<k>` or
 *   `aws:SourceIdentity`, `DateLessThan` on `aws:TokenIssueTime`. Allow
 *   statements are not modelled: anything not denied is allowed.
 *
 * "Verified against a wire-compatible local server, not against the cloud."
 */
export async function startStsWireServer(options: { region?: string } = {}): Promise<StsWireServer> {
  const region = options.region ?? 'us-east-1';
  const secrets = new Map<string, string>();
  const principals = new Map<string, TestPrincipal>();
  const sessions = new Map<string, Session>();
  const roles = new Map<string, Role>();
  const faults: StsFaults = { throttle: 0, delayMs: 0, denyAssumeRole: false, denyPutRolePolicy: false };
  const assumeRoleCalls: RecordedAssumeRole[] = [];
  const callerIdentityCalls: StsWireServer['callerIdentityCalls'] = [];

  const addUser = (name: string, opts: { account?: string } = {}): TestPrincipal => {
    const account = opts.account ?? ACCOUNT;
    // Obviously fake, generated per run.
    const principal = {
      accessKeyId: `AKIATEST${randomBytes(6).toString('hex').toUpperCase()}`,
      secretAccessKey: `test-secret-${randomBytes(18).toString('base64url')}`,
      arn: `arn:aws:iam::${account}:user/${name}`,
      account,
    };
    secrets.set(principal.accessKeyId, principal.secretAccessKey);
    principals.set(principal.accessKeyId, principal);
    return principal;
  };
  const engine = addUser('custos-engine');

  const send = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId() });
    res.end(body);
  };
  const fail = (res: ServerResponse, ns: string, status: number, code: string, message: string) =>
    send(
      res,
      status,
      `<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>${requestId()}</RequestId></ErrorResponse>`,
    );
  const ok = (res: ServerResponse, ns: string, action: string, result: string) =>
    send(
      res,
      200,
      `<${action}Response xmlns="${ns}">${result ? `<${action}Result>${result}</${action}Result>` : ''}<ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></${action}Response>`,
    );

  /** Does a Deny statement of the session's role match the session? */
  const deniedBy = (session: Session): boolean => {
    for (const document of session.role.inline.values()) {
      let parsed: { Statement?: unknown };
      try {
        parsed = JSON.parse(document) as { Statement?: unknown };
      } catch {
        continue;
      }
      const statements = Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement];
      for (const st of statements as Array<{ Effect?: string; Condition?: Record<string, Record<string, unknown>> }>) {
        if (st?.Effect !== 'Deny') continue;
        const conditions = Object.entries(st.Condition ?? {});
        const matches = conditions.every(([operator, keys]) =>
          Object.entries(keys).every(([key, raw]) => {
            const values = (Array.isArray(raw) ? raw : [raw]).map(String);
            if (operator === 'DateLessThan' && key === 'aws:TokenIssueTime') {
              return values.some((v) => session.issuedAt.getTime() < Date.parse(v));
            }
            if (operator !== 'StringEquals') return false;
            const actual =
              key === 'aws:SourceIdentity'
                ? session.sourceIdentity
                : key.startsWith('aws:PrincipalTag/')
                  ? session.tags[key.slice('aws:PrincipalTag/'.length)]
                  : undefined;
            return actual !== undefined && values.includes(actual);
          }),
        );
        if (matches) return true;
      }
    }
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const auth = String(req.headers.authorization ?? '');
    const service = /Credential=[^/]+\/\d{8}\/[^/]+\/([a-z]+)\//.exec(auth)?.[1] === 'iam' ? 'iam' : 'sts';
    const ns = service === 'iam' ? IAM_NS : STS_NS;
    const verdict = verifySigV4(
      { method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body },
      secrets,
      { region: service === 'iam' ? 'us-east-1' : region, service },
    );
    if ('type' in verdict) {
      const code = verdict.type === 'UnrecognizedClientException' ? 'InvalidClientTokenId' : 'SignatureDoesNotMatch';
      return fail(res, ns, 403, code, verdict.message);
    }
    const session = sessions.get(verdict.accessKeyId);
    if (session) {
      // A session key is only good with its own token, and only until it expires.
      if (req.headers['x-amz-security-token'] !== session.sessionToken) {
        return fail(res, ns, 403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
      }
      if (session.expiresAt.getTime() <= Date.now()) {
        return fail(res, ns, 403, 'ExpiredToken', 'The security token included in the request is expired');
      }
    }
    const caller = session ?? principals.get(verdict.accessKeyId);
    if (!caller) return fail(res, ns, 403, 'InvalidClientTokenId', 'The security token is invalid.');
    const form = new URLSearchParams(body.toString('utf8'));
    const action = form.get('Action') ?? '';
    if (faults.delayMs > 0) await new Promise((r) => setTimeout(r, faults.delayMs));
    if (res.destroyed) return;
    if (faults.throttle > 0) {
      faults.throttle -= 1;
      return fail(res, ns, 400, 'Throttling', 'Rate exceeded');
    }
    // AWS never denies GetCallerIdentity by policy; everything else a
    // revoked session tries is refused.
    if (session && action !== 'GetCallerIdentity' && deniedBy(session)) {
      return fail(
        res,
        ns,
        403,
        'AccessDenied',
        `User: ${session.arn} is not authorized to perform: ${service}:${action} with an explicit deny in an identity-based policy`,
      );
    }
    switch (`${service}:${action}`) {
      case 'sts:GetCallerIdentity': {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        callerIdentityCalls.push({ arn: caller.arn, headers });
        const userId = session ? `${session.role.id}:${session.sessionName}` : `AIDA${caller.accessKeyId.slice(8)}`;
        return ok(
          res,
          ns,
          'GetCallerIdentity',
          `<Arn>${xml(caller.arn)}</Arn><UserId>${xml(userId)}</UserId><Account>${caller.account}</Account>`,
        );
      }
      case 'sts:AssumeRole': {
        if (faults.denyAssumeRole) {
          return fail(res, ns, 403, 'AccessDenied', `User: ${caller.arn} is not authorized to perform: sts:AssumeRole`);
        }
        const roleArn = form.get('RoleArn') ?? '';
        const role = [...roles.values()].find((r) => r.arn === roleArn);
        if (!role) {
          return fail(res, ns, 403, 'AccessDenied', `User: ${caller.arn} is not authorized to perform: sts:AssumeRole`);
        }
        const sessionName = form.get('RoleSessionName') ?? '';
        if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
          return fail(res, ns, 400, 'ValidationError', 'RoleSessionName is invalid.');
        }
        const durationSeconds = Number(form.get('DurationSeconds') ?? '3600');
        if (!Number.isInteger(durationSeconds) || durationSeconds < MIN_DURATION || durationSeconds > MAX_DURATION) {
          return fail(
            res,
            ns,
            400,
            'ValidationError',
            `1 validation error detected: Value '${form.get('DurationSeconds')}' at 'durationSeconds' failed to satisfy constraint: Member must have value between ${MIN_DURATION} and ${MAX_DURATION}`,
          );
        }
        if (durationSeconds > role.maxSessionDuration) {
          return fail(
            res,
            ns,
            400,
            'ValidationError',
            'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
          );
        }
        const sourceIdentity = form.get('SourceIdentity') ?? undefined;
        if (sourceIdentity !== undefined && !/^[\w+=,.@-]{2,64}$/.test(sourceIdentity)) {
          return fail(res, ns, 400, 'ValidationError', 'SourceIdentity is invalid.');
        }
        const tags: Record<string, string> = {};
        for (let i = 1; form.has(`Tags.member.${i}.Key`); i++) {
          tags[form.get(`Tags.member.${i}.Key`) ?? ''] = form.get(`Tags.member.${i}.Value`) ?? '';
        }
        const policy = form.get('Policy') ?? undefined;
        if (policy !== undefined) {
          try {
            JSON.parse(policy);
          } catch {
            return fail(res, ns, 400, 'MalformedPolicyDocument', 'The policy is not in the valid JSON format.');
          }
          if (policy.length > 2048)
            return fail(res, ns, 400, 'PackedPolicyTooLarge', 'The session policy is too large.');
        }
        const issuedAt = new Date();
        const expiresAt = new Date(issuedAt.getTime() + durationSeconds * 1000);
        const created: Session = {
          accessKeyId: `ASIATEST${randomBytes(6).toString('hex').toUpperCase()}`,
          secretAccessKey: `test-session-secret-${randomBytes(18).toString('base64url')}`,
          sessionToken: `test-session-token-${randomBytes(32).toString('base64url')}`,
          arn: `arn:aws:sts::${role.account}:assumed-role/${role.name}/${sessionName}`,
          account: role.account,
          role,
          sessionName,
          sourceIdentity,
          tags,
          issuedAt,
          expiresAt,
        };
        sessions.set(created.accessKeyId, created);
        secrets.set(created.accessKeyId, created.secretAccessKey);
        assumeRoleCalls.push({
          callerAccessKeyId: caller.accessKeyId,
          roleArn,
          sessionName,
          sourceIdentity,
          tags,
          policy,
          durationSeconds,
          accessKeyId: created.accessKeyId,
        });
        return ok(
          res,
          ns,
          'AssumeRole',
          `${sourceIdentity ? `<SourceIdentity>${xml(sourceIdentity)}</SourceIdentity>` : ''}<AssumedRoleUser><AssumedRoleId>${role.id}:${xml(sessionName)}</AssumedRoleId><Arn>${xml(created.arn)}</Arn></AssumedRoleUser><Credentials><AccessKeyId>${created.accessKeyId}</AccessKeyId><SecretAccessKey>${created.secretAccessKey}</SecretAccessKey><SessionToken>${created.sessionToken}</SessionToken><Expiration>${expiresAt.toISOString()}</Expiration></Credentials><PackedPolicySize>${Object.keys(tags).length}</PackedPolicySize>`,
        );
      }
      case 'iam:PutRolePolicy':
      case 'iam:GetRolePolicy':
      case 'iam:GetRole': {
        if (action === 'PutRolePolicy' && faults.denyPutRolePolicy) {
          return fail(
            res,
            ns,
            403,
            'AccessDenied',
            `User: ${caller.arn} is not authorized to perform: iam:PutRolePolicy`,
          );
        }
        const role = roles.get(form.get('RoleName') ?? '');
        if (!role) return fail(res, ns, 404, 'NoSuchEntity', 'The role cannot be found.');
        if (action === 'GetRole') {
          return ok(
            res,
            ns,
            'GetRole',
            `<Role><Path>/</Path><RoleName>${role.name}</RoleName><RoleId>${role.id}</RoleId><Arn>${role.arn}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><MaxSessionDuration>${role.maxSessionDuration}</MaxSessionDuration></Role>`,
          );
        }
        const policyName = form.get('PolicyName') ?? '';
        if (action === 'GetRolePolicy') {
          const document = role.inline.get(policyName);
          if (document === undefined) return fail(res, ns, 404, 'NoSuchEntity', 'The role policy cannot be found.');
          return ok(
            res,
            ns,
            'GetRolePolicy',
            `<RoleName>${role.name}</RoleName><PolicyName>${xml(policyName)}</PolicyName><PolicyDocument>${encodeURIComponent(document)}</PolicyDocument>`,
          );
        }
        const document = form.get('PolicyDocument') ?? '';
        try {
          JSON.parse(document);
        } catch {
          return fail(res, ns, 400, 'MalformedPolicyDocument', 'The policy is not in the valid JSON format.');
        }
        // AWS's limit on the aggregate size of a role's inline policies.
        const others = [...role.inline].filter(([n]) => n !== policyName).reduce((n, [, d]) => n + d.length, 0);
        if (others + document.replace(/\s/g, '').length > 10_240) {
          return fail(res, ns, 409, 'LimitExceeded', 'Maximum policy size of 10240 bytes exceeded for role.');
        }
        role.inline.set(policyName, document);
        return ok(res, ns, 'PutRolePolicy', '');
      }
      default:
        return fail(res, ns, 400, 'InvalidAction', `Could not find operation ${action} for version.`);
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
    account: ACCOUNT,
    engineCredentials: { accessKeyId: engine.accessKeyId, secretAccessKey: engine.secretAccessKey },
    faults,
    assumeRoleCalls,
    callerIdentityCalls,
    addRole(name, opts = {}) {
      const role: Role = {
        name,
        arn: `arn:aws:iam::${ACCOUNT}:role/${name}`,
        id: `AROA${randomBytes(8).toString('hex').toUpperCase()}`,
        account: ACCOUNT,
        maxSessionDuration: opts.maxSessionDuration ?? 3600,
        inline: new Map(),
      };
      roles.set(name, role);
      return role.arn;
    },
    addUser,
    rolePolicies: (name) => roles.get(name)?.inline ?? new Map(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
