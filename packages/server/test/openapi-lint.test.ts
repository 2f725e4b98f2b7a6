import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_ROUTES } from './adversarial/adversarial-support.js';
import { fakeSecret, startTestServer, type TestServer } from './test-server.js';

const run = promisify(execFile);
const redocly = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');

interface OpenApiOperation {
  operationId?: string;
  security?: unknown[];
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, unknown>;
}
type OpenApiDocument = { paths: Record<string, Record<string, OpenApiOperation>> } & Record<string, unknown>;

interface RedoclyReport {
  totals: { errors: number; warnings: number };
  problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }>;
}

const pointer = (path: string, method: string) => `#/paths/${path.replaceAll('/', '~1')}/${method}/responses`;

/**
 * The warnings Redocly's recommended ruleset still gives, each explained.
 * The test fails on any other problem, and on any of these going away (then
 * delete its line): a new warning is a decision to make, not noise.
 */
const EXPLAINED_WARNINGS = [
  // `/v1/tasks/{id}/tree` and `/v1/tasks/accessors/{accessor}` would both
  // match `/v1/tasks/accessors/tree`. No request is ambiguous in fact: the
  // router prefers the static `accessors` segment, and a task id is
  // `tsk_<22 base64url>`, never `accessors`.
  'no-ambiguous-paths #/paths/~1v1~1tasks~1accessors~1{accessor}',
  // Public routes without any input cannot answer 4xx: they need no token,
  // take no parameter or body, and are not rate limited. Documenting a 4XX
  // they never send would be false; they answer 200, or 5xx while sealed.
  `operation-4xx-response ${pointer('/v1/sys/health', 'get')}`,
  `operation-4xx-response ${pointer('/v1/sys/seal-status', 'get')}`,
  `operation-4xx-response ${pointer('/v1/audit/public-keys', 'get')}`,
  `operation-4xx-response ${pointer('/v1/auth/cert/ca', 'get')}`,
  `operation-4xx-response ${pointer('/.well-known/jwks.json', 'get')}`,
  `operation-4xx-response ${pointer('/.well-known/oauth-authorization-server', 'get')}`,
].sort();

/** The operations callable without a token: the public routes but the hidden `/openapi.json` and console (`/ui`). */
const PUBLIC_OPERATIONS = PUBLIC_ROUTES.filter((route) => route !== 'GET /openapi.json' && !route.startsWith('GET /ui'))
  // fastify's `:name` is OpenAPI's `{name}`.
  .map((route) => route.replace(/:([A-Za-z0-9_]+)/g, '{$1}'))
  .sort();

describe('the OpenAPI document', () => {
  let s: TestServer;
  let doc: OpenApiDocument;
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ path, method, op, name: `${method.toUpperCase()} ${path}` })),
    );

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    const response = await s.call({ method: 'GET', url: '/openapi.json', token: null });
    expect(response.statusCode).toBe(200);
    doc = response.json();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('passes `redocly lint` (recommended ruleset) with no error and only the explained warnings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc, null, 2));
      // Exit code 1 means errors; the JSON report is on stdout either way.
      const { stdout } = await run(process.execPath, [redocly, 'lint', file, '--format=json'], {
        cwd: dir,
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const report = JSON.parse(stdout) as RedoclyReport;
      const errors = report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message}`);
      expect(errors).toEqual([]);
      const warnings = report.problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}`).sort();
      expect(warnings).toEqual(EXPLAINED_WARNINGS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('marks exactly the public operations `security: []`; every other one needs a token', () => {
    const open = operations().filter(({ op }) => Array.isArray(op.security) && op.security.length === 0);
    expect(open.map((o) => o.name).sort()).toEqual(PUBLIC_OPERATIONS);
    for (const { op } of operations()) expect(op.security === undefined || op.security.length === 0).toBe(true);
    expect(doc.security).toEqual([{ bearer: [] }, { dpop: [] }, { custosToken: [] }]);
  });

  it('gives every operation a stable, unique, readable operationId', () => {
    const ids = operations().map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const byName = Object.fromEntries(operations().map(({ name, op }) => [name, op.operationId]));
    expect(byName).toMatchObject({
      'GET /v1/secrets/data/{path}': 'getSecretsDataByPath',
      'POST /v1/roles/{name}/tasks': 'postRolesByNameTasks',
      'POST /v1/oauth/token': 'postOauthToken',
      'GET /.well-known/jwks.json': 'getWellKnownJwksJson',
    });
  });

  it('names the wildcard parameter `path`, and a client that percent-encodes it reaches the same secret', async () => {
    expect(Object.keys(doc.paths).filter((p) => p.includes('{*}'))).toEqual([]);
    const read = doc.paths['/v1/secrets/data/{path}']?.get;
    expect(read?.parameters).toContainEqual(expect.objectContaining({ in: 'path', name: 'path', required: true }));
    const value = fakeSecret('openapi');
    const put = await s.call({ method: 'PUT', url: '/v1/secrets/data/kv%2Fopenapi%2Fx', payload: { data: { value } } });
    expect(put.statusCode).toBe(200);
    const get = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/openapi/x' });
    expect(get.json().data).toEqual({ value });
  });

  it('documents the form encoding of the OAuth endpoints, and their response bodies', () => {
    for (const path of ['/v1/oauth/token', '/v1/oauth/introspect']) {
      const op = doc.paths[path]?.post;
      expect(Object.keys(op?.requestBody?.content ?? {})).toEqual([
        'application/x-www-form-urlencoded',
        'application/json',
      ]);
      expect(Object.keys(op?.responses ?? {})).toEqual(['200', '4XX']);
    }
  });

  it('names its server and licence', () => {
    expect(doc.servers).toEqual([{ url: s.node.services().issuer }]);
    expect(doc.info).toMatchObject({ license: { identifier: 'Apache-2.0' } });
  });
});
