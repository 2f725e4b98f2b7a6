import { describe, expect, it } from 'vitest';
import { isScopeSubset, parseScope, scopeAllows } from '../policy/index.js';
import { FULL_SCOPE } from '../tasks/index.js';
import {
  methodAllowed,
  pathAllowed,
  validateAllowHosts,
  validateAllowMethods,
  validateAllowPaths,
} from './upstream-allow.js';
import { parseInjectRule, parseInjectRules, renderInject } from './upstream-inject.js';
import { checkProxyPath, checkProxyQuery } from './upstream-path.js';
import { parseSecretRef, upstreamUseResource, validateUpstreamName } from './upstream-service.js';
import { validateBaseUrl } from './upstream-url.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('the upstream base URL', () => {
  it('is https, or http to a loopback host only, and comes back normalised', () => {
    expect(validateBaseUrl('https://api.example.com/v1/')).toBe('https://api.example.com/v1');
    expect(validateBaseUrl('https://API.example.com:8443')).toBe('https://api.example.com:8443');
    expect(validateBaseUrl('http://127.0.0.1:9999/v1')).toBe('http://127.0.0.1:9999/v1');
    expect(validateBaseUrl('http://[::1]:9999')).toBe('http://[::1]:9999');
    expect(validateBaseUrl('http://localhost:1')).toBe('http://localhost:1');
    for (const bad of ['http://api.example.com', 'http://10.0.0.1', 'ftp://x.example', 'file:///etc/passwd']) {
      expect(
        code(() => validateBaseUrl(bad)),
        bad,
      ).toBe('CUSTOS_ERR_UPSTREAM_URL_INVALID');
    }
  });

  it('refuses userinfo, a query, a fragment and a path that is not plain', () => {
    for (const bad of [
      'https://user:pass@api.example.com',
      'https://user@api.example.com',
      'https://api.example.com/v1?key=x',
      'https://api.example.com/v1#frag',
      'https://api.example.com/v1/../admin',
      'https://api.example.com/v1/./x',
      'https://api.example.com//v1',
      'https://api.example.com/v1/%2e%2e',
      'https://api.example.com\\v1',
      'https://api.example.com/v1\r\nHost: evil',
      '',
      'not a url',
    ]) {
      expect(
        code(() => validateBaseUrl(bad)),
        bad,
      ).toBe('CUSTOS_ERR_UPSTREAM_URL_INVALID');
    }
  });
});

describe('inject rules', () => {
  it('parse into a header (lower-cased) or a query parameter with {{value}} once', () => {
    expect(parseInjectRule('header:Authorization=Bearer {{value}}')).toEqual({
      target: 'header',
      name: 'authorization',
      template: 'Bearer {{value}}',
    });
    expect(parseInjectRule('query:key={{value}}')).toEqual({ target: 'query', name: 'key', template: '{{value}}' });
    expect(renderInject(parseInjectRule('header:X-Api-Key=k-{{value}}-$&'), 'v$&1')).toBe('k-v$&1-$&');
  });

  it('refuse no placeholder or two, hop-by-hop and Host headers, control characters and bad names', () => {
    for (const bad of [
      'header:Authorization=Bearer',
      'header:Authorization={{value}} {{value}}',
      'header:Host={{value}}',
      'header:Connection={{value}}',
      'header:Transfer-Encoding={{value}}',
      'header:Proxy-Authorization={{value}}',
      'header:Content-Length={{value}}',
      'header:X-A=a\r\nX-B: {{value}}',
      'header:X-A\n=x{{value}}',
      'header:Bad Name={{value}}',
      'query:a b={{value}}',
      'query:k=\u0000{{value}}',
      'cookie:a={{value}}',
      'header:={{value}}',
      'Authorization: Bearer {{value}}',
    ]) {
      expect(
        code(() => parseInjectRule(bad)),
        JSON.stringify(bad),
      ).toBe('CUSTOS_ERR_UPSTREAM_INJECT_INVALID');
    }
    expect(code(() => parseInjectRules([]))).toBe('CUSTOS_ERR_UPSTREAM_INJECT_INVALID');
    expect(code(() => parseInjectRules(['header:a={{value}}', 'header:A=x{{value}}']))).toBe(
      'CUSTOS_ERR_UPSTREAM_INJECT_INVALID',
    );
  });

  it('never render a value a header cannot carry', () => {
    const rule = parseInjectRule('header:Authorization=Bearer {{value}}');
    expect(code(() => renderInject(rule, 'abc\u2028'))).toBe('CUSTOS_ERR_UPSTREAM_SECRET_UNAVAILABLE');
  });
});

describe('allow lists', () => {
  it('paths: exact or prefix with a final *, and nothing that could be spelt two ways', () => {
    expect(validateAllowPaths(['/v1/*', '/chat/completions', '/*'])).toEqual(['/v1/*', '/chat/completions', '/*']);
    for (const bad of ['v1/*', '/v1/*/x', '/v1/../x', '/v1//x', '/v1/%2e', '/v1/./*', '/a\\b', '/a?b']) {
      expect(
        code(() => validateAllowPaths([bad])),
        bad,
      ).toBe('CUSTOS_ERR_UPSTREAM_ALLOW_INVALID');
    }
    expect(pathAllowed(['/v1/*'], '/v1/chat')).toBe(true);
    expect(pathAllowed(['/v1/*'], '/v2/chat')).toBe(false);
    expect(pathAllowed(['/v1/chat'], '/v1/chat/x')).toBe(false);
    expect(pathAllowed([], '/anything')).toBe(true);
  });

  it('methods: the seven ordinary ones, never CONNECT or TRACE', () => {
    expect(validateAllowMethods(['post', 'GET'])).toEqual(['POST', 'GET']);
    for (const bad of ['CONNECT', 'TRACE', 'FOO', '']) {
      expect(
        code(() => validateAllowMethods([bad])),
        bad,
      ).toBe('CUSTOS_ERR_UPSTREAM_ALLOW_INVALID');
    }
    expect(methodAllowed([], 'TRACE')).toBe(false);
    expect(methodAllowed([], 'POST')).toBe(true);
    expect(methodAllowed(['POST'], 'GET')).toBe(false);
  });

  it('hosts: egress allow entries, never a socket path', () => {
    expect(validateAllowHosts(['127.0.0.1:8080', 'api.example.com'])).toEqual(['127.0.0.1:8080', 'api.example.com']);
    for (const bad of ['unix:/run/x', 'not a host', '300.1.1.1:1:2']) {
      expect(
        code(() => validateAllowHosts([bad])),
        bad,
      ).toBe('CUSTOS_ERR_UPSTREAM_ALLOW_INVALID');
    }
  });
});

describe('proxied paths and queries', () => {
  it('pass plain paths as written', () => {
    expect(checkProxyPath('')).toBe('/');
    expect(checkProxyPath('/v1/chat/completions')).toBe('/v1/chat/completions');
    expect(checkProxyPath('/files/a%20b')).toBe('/files/a%20b');
    expect(checkProxyQuery('a=1&b=x%20y')).toBe('a=1&b=x%20y');
  });

  it('refuse traversal in every spelling, backslashes, control characters and double encoding', () => {
    for (const bad of [
      '/..',
      '/v1/../admin',
      '/v1/./x',
      '//evil.example/x',
      '/v1//x',
      '/v1/%2e%2e/admin',
      '/v1/%2E%2e/admin',
      '/v1/.%2e/admin',
      '/v1%2fadmin',
      '/v1%5cadmin',
      '/v1\\..\\admin',
      '/v1/%252e%252e/admin',
      '/v1/%0d%0aHost:%20evil',
      '/v1/%00',
      '/v1/%zz',
      'http://evil.example/',
      '/v1/\r\n',
    ]) {
      expect(
        code(() => checkProxyPath(bad)),
        bad,
      ).toBe('CUSTOS_ERR_PROXY_PATH_REFUSED');
    }
    for (const bad of ['a=%0d%0aX:%20y', 'a=\r\n', 'a=%00', 'a=b c', 'a=b#c']) {
      expect(
        code(() => checkProxyQuery(bad)),
        bad,
      ).toBe('CUSTOS_ERR_PROXY_PATH_REFUSED');
    }
  });
});

describe('names and secret references', () => {
  it('an upstream name is one path segment; a secret reference is kv/…#field', () => {
    expect(validateUpstreamName('openai')).toBe('openai');
    for (const bad of ['', 'Open', '../x', 'a/b', 'x'.repeat(64)]) {
      expect(
        code(() => validateUpstreamName(bad)),
        bad,
      ).toBe('CUSTOS_ERR_VALIDATION');
    }
    expect(parseSecretRef('kv/llm/openai#api_key')).toEqual({ path: 'kv/llm/openai', field: 'api_key' });
    for (const bad of ['kv/llm/openai', '#x', 'sys/x#y', 'kv/../x#y', 'kv/x#', 'kv/x#a b']) {
      expect(
        code(() => parseSecretRef(bad)),
        bad,
      ).toBe('CUSTOS_ERR_UPSTREAM_SECRET_INVALID');
    }
  });
});

describe('the use action in task scopes', () => {
  it('use:upstream/NAME allows using that upstream only', () => {
    const scope = parseScope('use:upstream/openai read:kv/a/*');
    expect(scopeAllows(scope, 'use', upstreamUseResource('openai'))).toBe(true);
    expect(scopeAllows(scope, 'use', upstreamUseResource('anthropic'))).toBe(false);
    // `read` on the upstream's path is not `use`, and `use` is not `read` on the secret.
    expect(scopeAllows(parseScope('read:upstream/*'), 'use', 'upstream/openai')).toBe(false);
    expect(scopeAllows(scope, 'read', 'upstream/openai')).toBe(false);
  });

  it('a child cannot widen it: use:upstream/* is not a subset of use:upstream/openai', () => {
    const parent = parseScope('use:upstream/openai');
    expect(isScopeSubset(parseScope('use:upstream/openai'), parent)).toBe(true);
    expect(isScopeSubset(parseScope('use:upstream/*'), parent)).toBe(false);
    expect(isScopeSubset(parseScope('use:upstream/anthropic'), parent)).toBe(false);
    expect(isScopeSubset(parseScope('use:upstream/openai'), parseScope('read:*'))).toBe(false);
  });

  it('a task without an explicit scope may use upstreams its role’s policies allow', () => {
    expect(scopeAllows(parseScope(FULL_SCOPE), 'use', 'upstream/openai')).toBe(true);
  });
});
