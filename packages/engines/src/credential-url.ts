/**
 * The admin URL with another user and password: same host, port, database
 * and options. Both are percent-encoded in full because the drivers
 * (`pg`, `mysql2`) decode them with `decodeURIComponent`, and the URL setters
 * alone leave a `%` in a password as it is.
 */
export function credentialUrl(adminUrl: string, username: string, password: string): string {
  const url = new URL(adminUrl);
  url.username = encodeURIComponent(username);
  url.password = encodeURIComponent(password);
  return url.toString();
}
