import { randomBytes } from 'node:crypto';
import { createEngine } from '@custos/engines';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMariadb, TEST_MARIADB } from '../../../test-support/mariadb.js';
import { putDatabaseRotation, startTestServer, type TestServer } from './test-server.js';

const available = await hasMariadb();

describe.skipIf(!available)('dynamic MariaDB credentials leased to tasks', () => {
  const db = `custos_lease_${randomBytes(4).toString('hex')}`;
  let admin: mysql.Connection;
  let s: TestServer;

  const userCount = async (name: string) => {
    const [rows] = await admin.query<mysql.RowDataPacket[]>('SELECT count(*) AS n FROM mysql.user WHERE User = ?', [
      name,
    ]);
    return Number(rows[0]?.n);
  };

  beforeAll(async () => {
    admin = await mysql.createConnection({ ...TEST_MARIADB, multipleStatements: true });
    await admin.query(
      `CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id int primary key); INSERT INTO ${db}.items VALUES (7);`,
    );
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    const url = `mysql://${TEST_MARIADB.user}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/${db}`;
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/my-main', payload: { type: 'mysql', url } })).statusCode,
    ).toBe(200);
    const role = await s.call({
      method: 'PUT',
      url: '/v1/engines/my-main/roles/reader',
      payload: { default_ttl: '5m' },
    });
    expect(role.statusCode).toBe(200);
    const bad = await s.call({
      method: 'PUT',
      url: '/v1/engines/my-main/roles/bad',
      payload: {
        creation_statements: ["CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'", 'GRANT NOTHING ON x TO y'],
      },
    });
    expect(bad.statusCode).toBe(400);
    await s.call({
      method: 'PUT',
      url: '/v1/policies/my-read',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"my-main/");',
      },
    });
    await s.call({
      method: 'PUT',
      url: '/v1/roles/my-agent',
      payload: { policies: ['my-read'], max_ttl: '15m', auth: ['bootstrap'] },
    });
  });
  afterAll(async () => {
    await s?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
    await admin?.end();
  });

  it('a task gets its own MariaDB user, uses it, and loses it (and its session) when the task ends', async () => {
    const bootstrap = await s.call({ method: 'POST', url: '/v1/roles/my-agent/bootstrap', payload: { ttl: '5m' } });
    const login = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: bootstrap.json().token },
    });
    const task = login.json() as { token: string; task_id: string };
    const issued = await s.call({ method: 'POST', url: '/v1/creds/my-main/reader', token: task.token, payload: {} });
    expect(issued.statusCode).toBe(200);
    const { username, password } = issued.json() as { username: string; password: string };
    const session = await mysql.createConnection({
      host: TEST_MARIADB.host,
      port: TEST_MARIADB.port,
      user: username,
      password,
      database: db,
    });
    session.on('error', () => undefined);
    const [rows] = await session.query<mysql.RowDataPacket[]>('SELECT id FROM items');
    expect(rows.map((r) => r.id)).toEqual([7]);
    expect((await s.call({ method: 'POST', url: `/v1/tasks/${task.task_id}/end` })).statusCode).toBe(200);
    expect(await userCount(username)).toBe(0);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    session.destroy();
  });

  it('rotates a static MariaDB user’s password through the engine (ALTER USER)', async () => {
    const user = `app_${randomBytes(4).toString('hex')}`;
    const initial = `pw_${randomBytes(12).toString('hex')}`;
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${initial}'`);
    await admin.query(`GRANT SELECT ON ${db}.* TO '${user}'@'%'`);
    const connect = async (password: string) => {
      const c = await mysql.createConnection({
        host: TEST_MARIADB.host,
        port: TEST_MARIADB.port,
        user,
        password,
        database: db,
      });
      await c.end();
    };
    try {
      await connect(initial);
      const path = 'kv/mariadb/static';
      const policy = await putDatabaseRotation(s, path, { engine: 'my-main', username: user, password: initial });
      expect(policy.statusCode).toBe(200);
      expect((await s.call({ method: 'POST', url: `/v1/secrets/rotate/${path}` })).statusCode).toBe(200);
      const { password } = (await s.call({ method: 'GET', url: `/v1/secrets/data/${path}` })).json().data;
      expect(password).not.toBe(initial);
      await connect(password);
      await expect(connect(initial)).rejects.toThrow();
    } finally {
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });
});
