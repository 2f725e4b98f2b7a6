import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

describe('custos resource add | list | show | delete', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const ok = async (args: string[], token?: string) => {
    const run = await h.cli(args, token ? { token } : {});
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };

  beforeAll(async () => {
    h = await startCliServer();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('registers a resource with scopes and a description, shows, lists and deletes it', async () => {
    const added = await ok([
      'resource',
      'add',
      'github-mcp',
      '--url',
      'https://MCP.example.com/mcp',
      '--scope',
      'use:mcp/github/*',
      '--scope',
      'read:kv/github/token',
      '--description',
      'GitHub tools',
    ]);
    expect(added).toContain('Resource github-mcp → https://mcp.example.com/mcp stored');
    expect(added).toContain('/.well-known/oauth-protected-resource/github-mcp');
    const shown = await ok(['resource', 'show', 'github-mcp']);
    expect(shown).toContain('use:mcp/github/* read:kv/github/token');
    expect(shown).toContain('GitHub tools');
    expect(JSON.parse(await ok(['resource', 'show', 'github-mcp', '--json']))).toMatchObject({
      url: 'https://mcp.example.com/mcp',
      scopes: ['use:mcp/github/*', 'read:kv/github/token'],
    });
    expect(await ok(['resource', 'list'])).toBe('github-mcp\n');
    expect(await ok(['resource', 'delete', 'github-mcp'])).toBe('Deleted resource github-mcp\n');
    const gone = await h.cli(['resource', 'show', 'github-mcp']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^custos: CUSTOS_ERR_RESOURCE_NOT_FOUND /);
  });

  it('task delegate --resource prints a token whose aud is the registered URL', async () => {
    await ok(['resource', 'add', 'tool', '--url', 'https://tool.example.com/mcp', '--scope', 'read:kv/cli/*']);
    const policy = join(h.dir, 'cli-tool.cedar');
    writeFileSync(policy, 'permit(principal, action, resource);\n');
    await ok(['policy', 'write', 'cli-tool', policy]);
    await ok(['role', 'write', 'cli-tool', '--policy', 'cli-tool', '--max-ttl', '10m']);
    const parent = (await ok(['task', 'start', '--role', 'cli-tool', '--ttl', '5m'])).trim();
    const child = JSON.parse(
      await ok(['task', 'delegate', '--resource', 'https://TOOL.example.com/mcp', '--json'], parent),
    );
    expect(child).toMatchObject({ aud: 'https://tool.example.com/mcp', scope: 'read:kv/cli/*' });
    const claims = JSON.parse(Buffer.from(child.access_token.split('.')[1], 'base64url').toString());
    expect(claims.aud).toBe('https://tool.example.com/mcp');
    const refused = await h.cli(['task', 'delegate', '--resource', 'https://tool.example.com/mcp#x'], {
      token: parent,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/invalid_target|CUSTOS_ERR_UNSUPPORTED_PARAMETER/);
    expect(refused.stderr).not.toContain(parent);
    await ok(['resource', 'delete', 'tool']);
  });

  it('refuses a URL with a fragment with its code, and stores nothing', async () => {
    const run = await h.cli(['resource', 'add', 'frag', '--url', 'https://mcp.example.com/mcp#x']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^custos: CUSTOS_ERR_RESOURCE_URL_INVALID .*fragment/);
    expect(await ok(['resource', 'list'])).toBe('\n');
  });
});
