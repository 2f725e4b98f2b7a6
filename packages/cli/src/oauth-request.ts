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
 * custos_code }`, not custos's `{ error: { code, message } }`: both are
 * mapped to the usual one-line `custos: CODE message` failure.
 *
 * `form` sends `application/x-www-form-urlencoded`, as RFC 8693 defines;
 * `bearer` authenticates the call (introspection needs a caller; the token
 * exchange does not, its subject token is the credential).
 */
export async function postOAuth<T>(
  io: CliIo,
  path: string,
  params: Record<string, string>,
  options: { form?: boolean; bearer?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = {
    'content-type': options.form ? 'application/x-www-form-urlencoded' : 'application/json',
  };
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  // exchange(), not request(): request() would add the CLI's own token, which the token exchange must not carry.
  const { response, text } = await new CustosClient(io).exchange(path, {
    method: 'POST',
    headers,
    body: options.form ? new URLSearchParams(params).toString() : JSON.stringify(params),
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
