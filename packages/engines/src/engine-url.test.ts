import { CustosError } from '@custos/core';
import { describe, expect, it } from 'vitest';
import { createEngine } from './create-engine.js';
import { parseEngineUrl } from './engine-url.js';

const PASSWORD = `fake-pw-${Math.random().toString(36).slice(2)}`;
const refusal = (fn: () => unknown): CustosError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    expect((e as CustosError).code).toBe('CUSTOS_ERR_ENGINE_URL_REFUSED');
    // Never the URL: it holds the admin password.
    expect((e as CustosError).message).not.toContain(PASSWORD);
    return e as CustosError;
  }
  throw new Error('expected a refusal');
};

describe('parseEngineUrl', () => {
  it('takes host, port, user, password and database apart, percent-decoded', () => {
    expect(
      parseEngineUrl(
        'postgres',
        `postgres://custos%40admin:${PASSWORD}%2F@db.internal:6543/app%20db?sslmode=verify-full`,
      ),
    ).toEqual({
      host: 'db.internal',
      port: 6543,
      user: 'custos@admin',
      password: `${PASSWORD}/`,
      database: 'app db',
      sslmode: 'verify-full',
      connectTimeoutMs: undefined,
      applicationName: undefined,
    });
    expect(parseEngineUrl('mysql', 'mysql://root@[::1]/x')).toMatchObject({
      host: '::1',
      port: undefined,
      user: 'root',
    });
    expect(parseEngineUrl('mysql', 'mariadb://root@db:3306')).toMatchObject({ host: 'db', database: undefined });
    expect(
      parseEngineUrl('postgres', 'postgresql://u@db/x?connect_timeout=5&application_name=custos%20prod'),
    ).toMatchObject({ connectTimeoutMs: 5_000, applicationName: 'custos prod' });
  });

  it('a percent-encoded absolute path is a PostgreSQL socket directory; for MySQL it is refused', () => {
    expect(parseEngineUrl('postgres', 'postgres://u@%2Fvar%2Frun%2Fpostgresql/db').host).toBe('/var/run/postgresql');
    refusal(() => parseEngineUrl('mysql', 'mysql://u@%2Fvar%2Frun%2Fmysqld%2Fmysqld.sock/db'));
  });

  // What each parameter would have done, had it reached the driver.
  it.each([
    ['mysql', 'debug', 'true', 'mysql2 prints every packet (passwords included) with console.log'],
    ['mysql', 'trace', 'true', 'mysql2 keeps call-site stacks'],
    ['mysql', 'socketPath', '/tmp/other.sock', 'another socket'],
    ['mysql', 'host', '10.0.0.1', 'another host'],
    ['mysql', 'user', 'root', 'another user than the URL names'],
    ['mysql', 'password', 'x', 'another password'],
    ['mysql', 'port', '1', 'another port'],
    ['mysql', 'localAddress', '10.0.0.5', 'another source address'],
    ['mysql', 'flags', '+LOCAL_FILES', 'LOAD DATA LOCAL: the server reads custos’s files'],
    ['mysql', 'ssl', '{"rejectUnauthorized":false}', 'TLS without verification'],
    ['mysql', 'multipleStatements', 'false', 'any driver option at all'],
    ['mysql', 'database', 'mysql', 'another database than the URL names'],
    ['postgres', 'sslrootcert', '/nonexistent/custos-test/ca.pem', 'pg reads the file on the main thread'],
    ['postgres', 'sslcert', '/etc/shadow', 'pg reads the file'],
    ['postgres', 'sslkey', '/nonexistent/custos-test/fifo', 'pg blocks on a FIFO'],
    ['postgres', 'host', '127.0.0.1', 'another host'],
    ['postgres', 'user', 'postgres', 'another user than the URL names'],
    ['postgres', 'port', '1', 'another port'],
    ['postgres', 'options', '-c role=postgres', 'server settings'],
    ['postgres', 'ssl', 'no-verify', 'TLS without verification'],
    ['postgres', 'replication', 'database', 'a replication connection'],
    ['postgres', 'sslnegotiation', 'direct', 'another TLS handshake'],
    ['postgres', 'uselibpqcompat', 'true', 'other sslmode semantics'],
  ] as const)('refuses %s ?%s= (%s: %s)', (type, name, value) => {
    const url = `${type}://admin:${PASSWORD}@db.example:1234/app?${name}=${encodeURIComponent(value)}`;
    const error = refusal(() => parseEngineUrl(type, url));
    expect(error.message).toContain(`"${name}"`);
    // And no engine is made from it: refused before any pool or file read.
    refusal(() => createEngine({ type, url }));
  });

  it('refuses values outside the allowed ones, a repeated parameter, another scheme, a fragment, no host', () => {
    for (const mode of ['prefer', 'allow', 'no-verify', 'REQUIRE', '']) {
      refusal(() => parseEngineUrl('postgres', `postgres://u:${PASSWORD}@db/x?sslmode=${mode}`));
    }
    for (const timeout of ['0', '121', '-1', '1.5', 'x', '0x10']) {
      refusal(() => parseEngineUrl('mysql', `mysql://u:${PASSWORD}@db/x?connect_timeout=${timeout}`));
    }
    refusal(() => parseEngineUrl('postgres', `postgres://u:${PASSWORD}@db/x?application_name=a%0Ab`));
    refusal(() => parseEngineUrl('mysql', `mysql://u:${PASSWORD}@db/x?application_name=custos`));
    refusal(() => parseEngineUrl('postgres', `postgres://u:${PASSWORD}@db/x?sslmode=require&sslmode=disable`));
    refusal(() => parseEngineUrl('postgres', `mysql://u:${PASSWORD}@db/x`));
    refusal(() => parseEngineUrl('mysql', `postgres://u:${PASSWORD}@db/x`));
    refusal(() => parseEngineUrl('postgres', `socket:/var/run/postgresql?db=x`));
    refusal(() => parseEngineUrl('postgres', `postgres://u:${PASSWORD}@db/x#frag`));
    refusal(() => parseEngineUrl('postgres', `postgres://u:${PASSWORD}@h1,h2/x`));
    refusal(() => parseEngineUrl('postgres', `not a url ${PASSWORD}`));
  });

  it('a parameter name that is not a plain word is not echoed', () => {
    const error = refusal(() =>
      parseEngineUrl('postgres', `postgres://u@db/x?${encodeURIComponent(`k ${PASSWORD}`)}=1`),
    );
    expect(error.message).toContain('a parameter');
  });
});
