import { randomBytes } from 'node:crypto';

/** One version of a Key Vault secret held by the wire server. */
interface SecretVersion {
  readonly version: string;
  readonly value: string;
  readonly contentType: string | undefined;
  readonly created: number;
  readonly notBefore: number | undefined;
  enabled: boolean;
}

/** What a handler answers with (the Key Vault server's own reply helpers). */
export interface KeyVaultReply {
  json(body: unknown): void;
  error(status: number, code: string, message: string): void;
}

/** The secrets part of the Key Vault wire server: the tests' store and the REST API over it. */
export interface KeyVaultSecrets {
  /** Adds a version (the newest becomes current); returns its version id. */
  setSecret(name: string, value: string, options?: { contentType?: string; notBefore?: Date }): string;
  /** Disables (or re-enables) one version. */
  setEnabled(name: string, version: string, enabled: boolean): void;
  /** Answers `GET /secrets`, `/secrets/{name}/versions`, `/secrets/{name}[/{version}]`; false if the path is not one. */
  handle(method: string, url: URL, base: string, reply: KeyVaultReply): boolean;
}

const NAME = '[0-9A-Za-z-]{1,127}';

/**
 * The Key Vault secrets REST API, for the wire server (key-vault-wire-server.ts
 * serves it behind the same bearer challenge, faults and TLS as keys):
 * `GET /secrets/{name}/{version}` (a SecretBundle with `value`,
 * `contentType`, `attributes` in Unix seconds), `GET /secrets/{name}` (the
 * newest enabled version), `GET /secrets/{name}/versions` and `GET /secrets`
 * (pages of SecretItems, `nextLink: null`). Errors are the service's
 * `SecretNotFound` / `Forbidden` (disabled version) shapes.
 */
export function createKeyVaultSecrets(): KeyVaultSecrets {
  const secrets = new Map<string, SecretVersion[]>();
  let clock = Date.now();
  const tick = () => {
    clock = Math.max(clock + 1000, Date.now());
    return clock;
  };
  const attributes = (v: SecretVersion) => ({
    enabled: v.enabled,
    created: Math.floor(v.created / 1000),
    updated: Math.floor(v.created / 1000),
    ...(v.notBefore !== undefined ? { nbf: Math.floor(v.notBefore / 1000) } : {}),
    recoveryLevel: 'Recoverable+Purgeable',
  });
  const item = (base: string, name: string, v: SecretVersion, withVersion: boolean) => ({
    id: `${base}/secrets/${name}${withVersion ? `/${v.version}` : ''}`,
    attributes: attributes(v),
    ...(v.contentType ? { contentType: v.contentType } : {}),
  });

  return {
    setSecret(name, value, options = {}) {
      const version = randomBytes(16).toString('hex');
      const v: SecretVersion = {
        version,
        value,
        contentType: options.contentType,
        created: tick(),
        notBefore: options.notBefore?.getTime(),
        enabled: true,
      };
      secrets.set(name, [...(secrets.get(name) ?? []), v]);
      return version;
    },
    setEnabled(name, version, enabled) {
      const v = secrets.get(name)?.find((x) => x.version === version);
      if (!v) throw new Error(`no version ${version} of ${name}`);
      v.enabled = enabled;
    },
    handle(method, url, base, reply) {
      if (method !== 'GET') return false;
      if (url.pathname === '/secrets') {
        const value = [...secrets.entries()].map(([name, vs]) => item(base, name, vs.at(-1) as SecretVersion, false));
        reply.json({ value, nextLink: null });
        return true;
      }
      const m = new RegExp(`^/secrets/(${NAME})(?:/(versions|[0-9a-f]{32})?)?$`).exec(url.pathname);
      if (!m) return false;
      const name = m[1] as string;
      const versions = secrets.get(name);
      const notFound = () =>
        reply.error(404, 'SecretNotFound', `A secret with (name/id) ${name} was not found in this key vault.`);
      if (!versions) {
        notFound();
        return true;
      }
      if (m[2] === 'versions') {
        reply.json({ value: versions.map((v) => item(base, name, v, true)), nextLink: null });
        return true;
      }
      const v = m[2] ? versions.find((x) => x.version === m[2]) : versions.filter((x) => x.enabled).at(-1);
      if (!v) notFound();
      else if (!v.enabled) reply.error(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.');
      else {
        reply.json({
          value: v.value,
          id: `${base}/secrets/${name}/${v.version}`,
          attributes: attributes(v),
          ...(v.contentType ? { contentType: v.contentType } : {}),
        });
      }
      return true;
    },
  };
}
