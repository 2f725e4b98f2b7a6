import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_ROUTES, type SdkRouteName } from '../src/index.js';
import { type ListeningServer, startListeningServer } from './sdk-test-server.js';

interface JsonSchema {
  properties?: Record<string, unknown>;
  required?: string[];
  anyOf?: JsonSchema[];
}
interface Operation {
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
}
type OpenApiDocument = { paths: Record<string, Record<string, Operation>> };

/**
 * The SDK routes whose success response the server does not describe (a
 * bare `2XX`), so the fields the SDK reads cannot be checked against the
 * document: `pick()` checks them on every real response instead, and the
 * client tests exercise each. When the server documents one, this test
 * fails until it leaves this list — and then checks its fields.
 */
const UNDESCRIBED_RESPONSES: SdkRouteName[] = [
  'awsLogin',
  'bootstrapLogin',
  'certLogin',
  'endTask',
  'events',
  'issueCreds',
  'jwks',
  'jwtLogin',
  'metadata',
  'renewLease',
  'revokeLease',
  'revokeTask',
  'secretMetadata',
  'showTask',
  'startTask',
];

describe('the SDK’s hand-written routes and types agree with the server’s /openapi.json', () => {
  let s: ListeningServer;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    s = await startListeningServer();
    const response = await fetch(`${s.address}/openapi.json`);
    expect(response.status).toBe(200);
    doc = (await response.json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await s?.close();
  });

  const operation = (route: SdkRouteName): Operation => {
    const { method, path } = SDK_ROUTES[route];
    const op = doc.paths[path]?.[method.toLowerCase()];
    expect(op, `${method} ${path} is in /openapi.json`).toBeDefined();
    return op as Operation;
  };

  it.each(Object.keys(SDK_ROUTES) as SdkRouteName[])(
    '%s: the operation exists and takes what the SDK sends',
    (route) => {
      const op = operation(route);
      const accepted = new Set<string>((op.parameters ?? []).map((p) => p.name));
      for (const media of Object.values(op.requestBody?.content ?? {})) {
        for (const name of Object.keys(media.schema.properties ?? {})) accepted.add(name);
      }
      for (const field of SDK_ROUTES[route].sends) expect(accepted, `${route} takes "${field}"`).toContain(field);
      // Every path parameter in the template is one the operation declares.
      for (const [, name] of SDK_ROUTES[route].path.matchAll(/\{([a-z]+)\}/g)) {
        expect((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)).toContain(name);
      }
    },
  );

  it.each(Object.keys(SDK_ROUTES) as SdkRouteName[])(
    '%s: a described response has every field the SDK reads',
    (route) => {
      const op = operation(route);
      const schema = op.responses['200']?.content?.['application/json']?.schema;
      if (!schema?.properties) {
        expect(UNDESCRIBED_RESPONSES).toContain(route);
        return;
      }
      expect(UNDESCRIBED_RESPONSES).not.toContain(route);
      for (const field of SDK_ROUTES[route].reads) {
        expect(Object.keys(schema.properties), `${route} answers "${field}"`).toContain(field);
      }
    },
  );

  it('the token exchange takes the RFC 8693 form encoding and requires subject_token_type, as the SDK sends it', () => {
    const op = operation('tokenExchange');
    const form = op.requestBody?.content['application/x-www-form-urlencoded'];
    expect(form).toBeDefined();
    expect(form?.schema.required).toEqual(
      expect.arrayContaining(['grant_type', 'subject_token', 'subject_token_type']),
    );
    expect(op.responses['200']?.content?.['application/json']?.schema.required).toEqual(
      expect.arrayContaining([...SDK_ROUTES.tokenExchange.reads]),
    );
  });

  it('the JWKS the verifier reads is public: no security requirement', () => {
    const op = operation('jwks') as Operation & { security?: unknown[] };
    expect(op.security).toEqual([]);
  });
});
