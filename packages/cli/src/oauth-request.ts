import { CliError, type CliIo } from './cli-io.js';
import { CustosClient } from './http-client.js';

interface OAuthErrorBody {
  error?: string | { code?: string; message?: string };
  error_description?: string;
  custos_code?: string;
}

/**
 * POSTs to an OAuth endpoint (`/v1/oauth/token`, `/v1/oauth/introspect`).
 * They answer errors in RFC 6749 form, `{ error, error_description,
 * custos_code }` — 400 for a refused exchange, 401 with `WWW-Authenticate`
 * for an introspection caller without a valid token — not custos's
 * `{ error: { code, message } }`: both are mapped to the usual one-line
 * `custos: CODE message` failure, the custos code first.
 *
 * The body is `application/x-www-form-urlencoded`, as RFC 8693 §2.1 and
 * RFC 7662 §2.1 define (`form: false` sends JSON, which custos also takes);
 * `bearer` authenticates the call (introspection needs a caller; the token
 * exchange does not, its subject token is the credential).
 */
export async function postOAuth<T>(
  io: CliIo,
  path: string,
  params: Record<string, string>,
  options: { form?: boolean; bearer?: string } = {},
): Promise<T> {
  const form = options.form ?? true;
  const headers: Record<string, string> = {
    'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
  };
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  // exchange(), not request(): request() would add the CLI's own token, which the token exchange must not carry.
  const { response, text } = await new CustosClient(io).exchange(path, {
    method: 'POST',
    headers,
    body: form ? new URLSearchParams(params).toString() : JSON.stringify(params),
  });
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const body = (parsed ?? {}) as OAuthErrorBody;
    const nested = typeof body.error === 'object' ? body.error : undefined;
    const code = body.custos_code ?? nested?.code ?? `HTTP_${response.status}`;
    const message =
      body.error_description ?? nested?.message ?? (typeof body.error === 'string' ? body.error : response.statusText);
    throw new CliError(code, message);
  }
  return parsed as T;
}
