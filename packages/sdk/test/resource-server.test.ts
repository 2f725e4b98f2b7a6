import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Custos,
  CustosProtocolError,
  custosAuth,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type Task,
  TaskTokenInvalidError,
  verifyTaskToken,
} from '../src/index.js';
import { bootstrapToken, type ListeningServer, setUpAgentRole, startListeningServer } from './sdk-test-server.js';

/**
 * A resource server (an MCP server, an API) that accepts custos tokens
 * minted for it (RFC 8707) and advertises custos through RFC 9728 metadata,
 * with a real custos node on loopback and real resource servers.
 */
describe('resource servers: tokens for one resource, metadata from custos', () => {
  let s: ListeningServer;
  let issuer: string;
  let agent: Task;
  /** Two resource servers, A and B, each with custosAuth for its own URL and its metadata served from custos. */
  const servers: Array<{ server: Server; url: string; resource: string }> = [];

  const startResourceServer = async (name: string) => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const resource = `${url}/mcp`;
    const added = await s.call({
      method: 'PUT',
      url: `/v1/resources/${name}`,
      payload: { url: resource, scopes: [`use:tools/${name}/*`], description: `tools ${name}` },
    });
    expect(added.statusCode, added.body).toBe(200);
    const metadata = protectedResourceMetadata({ issuer, address: s.address, name, resource });
    const auth = custosAuth({
      issuer,
      jwksUrl: `${s.address}/.well-known/jwks.json`,
      audience: resource,
      resourceMetadata: metadata.url,
      requiredScope: `use:tools/${name}/search`,
    });
    const metadataPath = new URL(metadata.url).pathname;
    server.on('request', (request, response) => {
      if (request.url === metadataPath) return metadata.handler(request, response);
      auth(request, response, () => {
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ task: request.custosTask?.task_id, aud: request.custosTask?.aud }));
      });
    });
    servers.push({ server, url, resource });
    return { url, resource, metadataUrl: metadata.url };
  };

  beforeAll(async () => {
    s = await startListeningServer();
    issuer = s.node.services().issuer;
    await setUpAgentRole(s);
    await s.call({
      method: 'PUT',
      url: '/v1/policies/agent-tools',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"tools/");\n' +
          'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"resource/");',
      },
    });
    await s.call({
      method: 'PUT',
      url: '/v1/roles/agent',
      payload: { policies: ['agent-policy', 'agent-tools'], max_ttl: '15m', max_depth: 3, auth: ['bootstrap'] },
    });
    agent = await new Custos({ address: s.address }).loginWithBootstrap(await bootstrapToken(s));
  });
  afterAll(async () => {
    for (const { server } of servers) await new Promise<void>((r) => server.close(() => r()));
    await agent?.end();
    await s?.close();
  });

  it('a token exchanged for resource A is accepted by A and refused by B and by custos itself', async () => {
    const a = await startResourceServer('alpha');
    const b = await startResourceServer('beta');
    const forA = await agent.resourceToken(a.resource);
    expect(forA.audience).toBe(a.resource);
    expect(forA.scope).toBe('use:tools/alpha/*');

    const atA = await fetch(`${a.url}/mcp/search`, { headers: { authorization: `Bearer ${forA.token}` } });
    expect(atA.status).toBe(200);
    expect(await atA.json()).toEqual({ task: forA.taskId, aud: a.resource });

    const atB = await fetch(`${b.url}/mcp/search`, { headers: { authorization: `Bearer ${forA.token}` } });
    expect(atB.status).toBe(401);
    expect(atB.headers.get('www-authenticate')).toBe(
      `Bearer realm="custos", error="invalid_token", resource_metadata="${b.metadataUrl}"`,
    );
    // Offline, the verifier says why (for B's log only).
    const jwksUrl = `${s.address}/.well-known/jwks.json`;
    const wrong = await verifyTaskToken(forA.token, { issuer, jwksUrl, audience: b.resource }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(TaskTokenInvalidError);
    expect(wrong).toMatchObject({ reason: 'wrong_audience' });
    // A verifier for custos's own audience (the default) refuses it too…
    const asCustos = await verifyTaskToken(forA.token, { issuer, jwksUrl }).catch((e: unknown) => e);
    expect(asCustos).toMatchObject({ reason: 'wrong_audience' });
    // …and so does custos's API: the resource server cannot replay it there.
    const replay = await fetch(`${s.address}/v1/secrets/data/kv/team/db`, {
      headers: { authorization: `Bearer ${forA.token}` },
    });
    expect(replay.status).toBe(401);
    // An ordinary custos token is not accepted by A either: it is not for A.
    const plain = await fetch(`${a.url}/mcp/search`, { headers: { authorization: `Bearer ${agent.token}` } });
    expect(plain.status).toBe(401);
  });

  it('a 401 without a token points the client to the metadata, which names custos as authorization server', async () => {
    const c = await startResourceServer('gamma');
    expect(c.metadataUrl).toBe(`${c.url}/.well-known/oauth-protected-resource/mcp`);
    const none = await fetch(`${c.url}/mcp/search`);
    expect(none.status).toBe(401);
    const challenge = none.headers.get('www-authenticate') ?? '';
    const pointed = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    expect(pointed).toBe(c.metadataUrl);
    const document = await fetch(pointed as string);
    expect(document.status).toBe(200);
    expect(await document.json()).toEqual({
      resource: c.resource,
      authorization_servers: [issuer],
      scopes_supported: ['use:tools/gamma/*'],
      bearer_methods_supported: ['header'],
      resource_name: 'tools gamma',
    });
    // The client follows it: a token for this resource from custos works.
    const token = await agent.resourceToken(c.resource, { scope: 'use:tools/gamma/search' });
    const ok = await fetch(`${c.url}/mcp/search`, { headers: { authorization: `Bearer ${token.token}` } });
    expect(ok.status).toBe(200);
  });

  it('the metadata helper refuses a document for another resource rather than advertise it', async () => {
    await s.call({ method: 'PUT', url: '/v1/resources/delta', payload: { url: 'https://delta.example/mcp' } });
    const mismatched = protectedResourceMetadata({
      issuer,
      address: s.address,
      name: 'delta',
      resource: 'https://epsilon.example/mcp',
    });
    await expect(mismatched.document()).rejects.toBeInstanceOf(CustosProtocolError);
    const unknown = protectedResourceMetadata({
      issuer,
      address: s.address,
      name: 'nosuch',
      resource: 'https://delta.example/mcp',
    });
    await expect(unknown.document()).rejects.toMatchObject({ code: 'CUSTOS_ERR_PROTOCOL' });
    const good = protectedResourceMetadata({
      issuer,
      address: s.address,
      name: 'delta',
      resource: 'https://delta.example/mcp',
    });
    expect((await good.document()).resource).toBe('https://delta.example/mcp');
  });

  it('builds the RFC 9728 §3.1 well-known URL of a resource', () => {
    expect(protectedResourceMetadataUrl('https://mcp.example.com/mcp')).toBe(
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
    );
    expect(protectedResourceMetadataUrl('https://mcp.example.com')).toBe(
      'https://mcp.example.com/.well-known/oauth-protected-resource',
    );
    expect(() => protectedResourceMetadataUrl('https://mcp.example.com/#x')).toThrow();
  });
});
