import { randomBytes } from 'node:crypto';
import { createEngine } from '@custos/engines';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMariadb, TEST_MARIADB } from '../../../test-support/mariadb.js';
import { fakeSecret, putDatabaseRotation, startTestServer, type TestServer } from './test-server.js';

const available = await hasMariadb();

describe.skipIf(!available)('database rotation tests the new password with a login (real MariaDB)', () => {
  const db = `custos_rot_${randomBytes(4).toString('hex')}`;
  const user = `custos_rot_${randomBytes(4).toString('hex')}`;
  const path = 'kv/app/mariadb-static';
  let admin: mysql.Connection;
  let s: TestServer;
  /** When set, the engine's login test is made to use a wrong password, so MariaDB really refuses it. */
  let breakLoginTest = false;
  /** When set, putting the old password back fails too (the second setPassword of a rotation). */
  let breakRestore = false;
  let setPasswordCalls = 0;

  /** The real engine, except for the one switch above. */
  const engineFactory: typeof createEngine = (connection) => {
    const engine = createEngine(connection);
    return new Proxy(engine, {
      get(target, prop) {
        if (prop === 'testCredential' && breakLoginTest) {
          return (username: string, password: string) => target.testCredential(username, `${password}-not-it`);
        }
        if (prop === 'setPassword' && breakRestore) {
          return (username: string, password: string) => {
            setPasswordCalls++;
            if (setPasswordCalls > 1) return Promise.reject(new Error('connection lost'));
            return target.setPassword(username, password);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };

  /** Whether MariaDB accepts this password for the static user (it checks passwords, unlike the local PostgreSQL). */
  const accepts = async (password: string): Promise<boolean> => {
    const c = await mysql
      .createConnection({ host: TEST_MARIADB.host, port: TEST_MARIADB.port, user, password, database: db })
      .catch(() => undefined);
    if (!c) return false;
    await c.end();
    return true;
  };
  const current = async () => {
    const response = await s.call({ method: 'GET', url: `/v1/secrets/data/${path}` });
    expect(response.statusCode).toBe(200);
    return response.json() as { data: Record<string, string>; metadata: { version: number } };
  };

  beforeAll(async () => {
    admin = await mysql.createConnection({ ...TEST_MARIADB, multipleStatements: true });
    await admin.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id int primary key);`);
    s = await startTestServer('sqlite', { engineFactory });
    const url = `mysql://${TEST_MARIADB.user}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/${db}`;
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/my-rot', payload: { type: 'mysql', url } })).statusCode,
    ).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await admin?.query(`DROP USER IF EXISTS ?@'%'`, [user]);
    await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
    await admin?.end();
  });

  it('promotes a password that logs in; one that fails its login test is undone and current stays', async () => {
    const initial = fakeSecret('mariadb');
    await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, initial]);
    await admin.query(`GRANT SELECT ON ${db}.items TO ?@'%'`, [user]);
    const policy = await putDatabaseRotation(s, path, { engine: 'my-rot', username: user, password: initial });
    expect(policy.statusCode).toBe(200);

    // A good rotation: applied, tested with a real login, promoted.
    expect((await s.call({ method: 'POST', url: `/v1/secrets/rotate/${path}` })).statusCode).toBe(200);
    const rotated = await current();
    expect(rotated.metadata.version).toBe(2);
    expect(rotated.data.password).not.toBe(initial);
    expect(await accepts(rotated.data.password as string)).toBe(true);
    expect(await accepts(initial)).toBe(false);

    // The login test fails (MariaDB really refuses it): the old password is put back.
    breakLoginTest = true;
    const failed = await s.call({ method: 'POST', url: `/v1/secrets/rotate/${path}` });
    breakLoginTest = false;
    expect(failed.statusCode).toBe(502);
    const error = failed.json().error as { code: string; message: string };
    expect(error.code).toBe('CUSTOS_ERR_ROTATION_FAILED');
    expect(error.message).toMatch(/login/i);
    expect(error.message).toContain('The old password was put back.');
    expect(failed.body).not.toContain(rotated.data.password as string);
    expect(failed.body).not.toContain('-not-it');

    const after = await current();
    expect(after.metadata.version).toBe(2);
    expect(after.data).toEqual(rotated.data);
    expect(await accepts(rotated.data.password as string)).toBe(true);
    const meta = (await s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` })).json();
    expect(meta.stages).toMatchObject({ current: 2, pending: null });
    expect(meta.versions['3']?.destroyed).toBe(true);
    const status = (await s.call({ method: 'GET', url: `/v1/rotation/${path}` })).json();
    expect(status.last_error).toBe('CUSTOS_ERR_ROTATION_FAILED');
  });

  it('when the old password cannot be put back, the pending version (the password in effect) is kept', async () => {
    const before = await current();
    breakLoginTest = true;
    breakRestore = true;
    setPasswordCalls = 0;
    const failed = await s.call({ method: 'POST', url: `/v1/secrets/rotate/${path}` });
    breakLoginTest = false;
    breakRestore = false;
    expect(failed.statusCode).toBe(502);
    expect(failed.json().error.message).toContain('could not be put back');
    expect((await current()).metadata.version).toBe(before.metadata.version);
    const meta = (await s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` })).json();
    const pending = meta.stages.pending as number;
    expect(pending).toBeGreaterThan(before.metadata.version);
    const kept = await s.call({ method: 'GET', url: `/v1/secrets/data/${path}?version=${pending}` });
    expect(await accepts(kept.json().data.password as string)).toBe(true);
  });
});
