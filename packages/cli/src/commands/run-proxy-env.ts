import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import type { CustosClient } from '../http-client.js';

/** Where the credential proxy listens when `--proxy` names no address (the `--dev` default). */
export const DEFAULT_PROXY_ADDR = 'http://127.0.0.1:8421';

/**
 * The environment `custos run --proxy` gives CMD so that unmodified clients
 * reach upstreams through the credential proxy and never hold a key:
 *
 * - `HTTP_PROXY`/`HTTPS_PROXY` (and lower-case): the proxy, with the task
 *   token as the password of its userinfo (`http://task:TOKEN@host:port`), the
 *   form Python requests/httpx, curl and Node's env proxy turn into
 *   `Proxy-Authorization: Basic …`. CMD holds that token anyway
 *   (`CUSTOS_TOKEN`); it is a task token, not an upstream's key, and the
 *   output redactor knows it.
 * - `NO_PROXY`: custos's own API (`host:port`), which CMD calls directly.
 * - `NODE_EXTRA_CA_CERTS`, `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`,
 *   `CURL_CA_BUNDLE`: a file holding custos's CA, so the intercepted HTTPS
 *   is trusted. (The last three replace the trust store; that loses nothing,
 *   since HTTPS through the proxy goes only to intercepted upstreams.)
 * - `CUSTOS_UPSTREAM_<NAME>_URL`: each upstream's base-URL-mode address
 *   (`…/u/<name>`), for SDKs that take a base URL (with `CUSTOS_TOKEN` as
 *   their API key) — when the caller may list upstreams.
 *
 * `bound` maps each upstream's secret reference (`kv/…#field`) to the
 * upstream: a `--secret` naming one gets a placeholder instead of the value
 * (the proxy attaches the value on the wire), so a client that insists on
 * an API key variable has one that is worth nothing.
 *
 * No key is ever put in the environment. Throws CUSTOS_ERR_UNREACHABLE when
 * the proxy does not answer, so CMD is not started against a proxy that is
 * not there.
 */
export async function proxyEnvironment(
  io: CliIo,
  operator: CustosClient,
  proxyAddr: string,
  token: string,
  dir: string,
): Promise<{ env: Record<string, string>; bound: Map<string, string> }> {
  let proxy: URL;
  try {
    proxy = new URL(proxyAddr);
  } catch {
    throw new CliError('CUSTOS_ERR_USAGE', '--proxy is http://HOST:PORT', EXIT.usage);
  }
  if (proxy.protocol !== 'http:' || proxy.pathname !== '/' || proxy.search || proxy.username) {
    throw new CliError('CUSTOS_ERR_USAGE', '--proxy is http://HOST:PORT', EXIT.usage);
  }
  try {
    // Any HTTP answer (the proxy says 404 to `/`) means it is there.
    await fetch(`${proxy.origin}/`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.body?.cancel());
  } catch {
    throw new CliError('CUSTOS_ERR_UNREACHABLE', `cannot reach the credential proxy at ${proxy.origin}`, EXIT.usage);
  }
  const { ca_pem } = await operator.request<{ ca_pem: string }>('GET', '/v1/auth/cert/ca');
  const caFile = join(dir, 'custos-ca.pem');
  writeFileSync(caFile, ca_pem, { mode: 0o600 });
  const withToken = `http://task:${encodeURIComponent(token)}@${proxy.host}`;
  const api = new URL(io.env.CUSTOS_ADDR ?? 'http://127.0.0.1:8420');
  const apiHost = `${api.hostname}:${api.port || (api.protocol === 'https:' ? 443 : 80)}`;
  const env: Record<string, string> = {
    HTTP_PROXY: withToken,
    HTTPS_PROXY: withToken,
    http_proxy: withToken,
    https_proxy: withToken,
    NO_PROXY: apiHost,
    no_proxy: apiHost,
    NODE_EXTRA_CA_CERTS: caFile,
    REQUESTS_CA_BUNDLE: caFile,
    SSL_CERT_FILE: caFile,
    CURL_CA_BUNDLE: caFile,
    CUSTOS_PROXY_ADDR: proxy.origin,
  };
  // Base URLs are a convenience: a caller who may not list upstreams still gets the proxy.
  const listed = await operator.request<{ keys: string[] }>('GET', '/v1/upstreams').catch(() => ({ keys: [] }));
  const bound = new Map<string, string>();
  for (const name of listed.keys) {
    env[`CUSTOS_UPSTREAM_${name.toUpperCase().replace(/-/g, '_')}_URL`] = `${proxy.origin}/u/${name}`;
    const view = await operator
      .request<{ secret: string }>('GET', `/v1/upstreams/${encodeURIComponent(name)}`)
      .catch(() => undefined);
    if (view) bound.set(view.secret, name);
  }
  return { env, bound };
}
