/**
 * The API base, from the page's own location: the console is served at
 * `<prefix>ui/`, so the API is at `<prefix>v1/`. A reverse proxy that mounts
 * custos under a path (`/custos/ui/`) needs no configuration.
 */
export function apiBase(pathname: string = location.pathname): string {
  const at = pathname.lastIndexOf('/ui/');
  return at === -1 ? '/' : pathname.slice(0, at + 1);
}

/** An API error: its stable code and message, as the server sent them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Calls the API with the operator token as `Authorization: Bearer`. The
 * browser never holds a cookie for custos (custos sets none and reads none),
 * so a request from another site cannot carry the operator's authority:
 * no CSRF token is needed because there is nothing ambient to ride.
 * `credentials: 'omit'` makes that explicit.
 */
export async function api<T>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${apiBase()}v1/${path}`, {
    method,
    credentials: 'omit',
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) {
    // An answer from custos carries `{ error: { code, message } }`; one from a
    // reverse proxy in front of it may not be JSON at all: then the HTTP status
    // is all there is to show (as text, never as markup).
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP ${response.status}`,
      error?.message ?? response.statusText,
    );
  }
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  return parsed as T;
}

/** A path segment or a secret path, encoded for a URL: each `/`-separated part on its own. */
export const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/** The message to show for a failed call. */
export const describeError = (error: unknown) =>
  error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
