import { describe, expect, it } from 'vitest';
import { ResourceUrlError } from './resource-errors.js';
import { canonicalResourceUrl } from './resource-url.js';

// The one spelling rule of resource indicators: what an operator registers
// and what a token exchange names go through it, and must agree only when
// RFC 3986 says two spellings are one URI.
describe('canonicalResourceUrl', () => {
  it('folds only RFC 3986 equivalents: scheme and host case, default port, an empty path', () => {
    const cases: Array<[string, string]> = [
      ['https://mcp.example.com/mcp', 'https://mcp.example.com/mcp'],
      ['HTTPS://MCP.Example.COM/mcp', 'https://mcp.example.com/mcp'],
      ['https://mcp.example.com:443/mcp', 'https://mcp.example.com/mcp'],
      ['https://mcp.example.com/', 'https://mcp.example.com'],
      ['https://mcp.example.com', 'https://mcp.example.com'],
      ['https://mcp.example.com:8443', 'https://mcp.example.com:8443'],
      ['https://mcp.example.com/MCP', 'https://mcp.example.com/MCP'],
      ['https://mcp.example.com/mcp/', 'https://mcp.example.com/mcp/'],
      ['http://127.0.0.1:9/api', 'http://127.0.0.1:9/api'],
      ['http://localhost:9', 'http://localhost:9'],
      ['https://[::1]:8443/x', 'https://[::1]:8443/x'],
      ['https://bücher.example/x', 'https://xn--bcher-kva.example/x'],
    ];
    for (const [written, canonical] of cases) expect(canonicalResourceUrl(written), written).toBe(canonical);
  });

  it('refuses what is ambiguous or not a resource indicator, saying which rule, never the value', () => {
    for (const written of [
      '',
      'mcp.example.com',
      '/mcp',
      '//mcp.example.com',
      'http://mcp.example.com',
      'ftp://mcp.example.com',
      'https://mcp.example.com#x',
      'https://mcp.example.com/#',
      'https://mcp.example.com?x',
      'https://user@mcp.example.com',
      'https://user:pw@mcp.example.com',
      'https://@mcp.example.com',
      'https://mcp.example.com/a/../b',
      'https://mcp.example.com/./b',
      'https://mcp.example.com/..',
      'https://mcp.example.com//b',
      'https://mcp.example.com/a%2fb',
      'https://mcp.example.com/%2e%2e',
      'https://mcp.example.com\\b',
      'https://mcp.example.com/a b',
      'https://mcp.example.com/a\nb',
      `https://mcp.example.com/${'a'.repeat(2048)}`,
    ]) {
      let error: unknown;
      try {
        canonicalResourceUrl(written);
      } catch (e) {
        error = e;
      }
      expect(error, written).toBeInstanceOf(ResourceUrlError);
      if (written.length > 3) expect((error as Error).message, written).not.toContain(written);
    }
  });
});
