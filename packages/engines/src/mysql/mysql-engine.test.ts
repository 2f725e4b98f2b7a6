import { CustosError, EgressPolicy } from '@custos/core';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMariadb, TEST_MARIADB } from '../../../../test-support/mariadb.js';
import { defaultRole, PASSWORD_SHAPE, unique } from '../test-support/engine-test-helpers.js';
import { MysqlEngine } from './mysql-engine.js';

const expectCode = async (p: Promise<unknown>, code: string): Promise<CustosError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CustosError);
  expect((e as CustosError).code).toBe(code);
  return e as CustosError;
};

const available = await hasMariadb();

describe.skipIf(!available)('MysqlEngine (real MariaDB)', () => {
  const db = `custos_t_${unique()}`;
  const other = `${db}_other`;
  const url = `mysql://${TEST_MARIADB.user}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/${db}`;
  let admin: mysql.Connection;
  let engine: MysqlEngine;
  const sessions: mysql.Connection[] = [];

  async function login(user: string, password: string): Promise<mysql.Connection> {
    const c = await mysql.createConnection({
      host: TEST_MARIADB.host,
      port: TEST_MARIADB.port,
      user,
      password,
      database: db,
    });
    c.on('error', () => undefined);
    sessions.push(c);
    return c;
  }
  const usersLike = async (prefix: string) => {
    const [rows] = await admin.query<mysql.RowDataPacket[]>('SELECT count(*) AS n FROM mysql.user WHERE User LIKE ?', [
      `${prefix}%`,
    ]);
    return Number(rows[0]?.n);
  };

  beforeAll(async () => {
    admin = await mysql.createConnection({ ...TEST_MARIADB, multipleStatements: true });
    await admin.query(
      `CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id int primary key, label text); INSERT INTO ${db}.items VALUES (1, 'one');
       CREATE DATABASE ${other}; CREATE TABLE ${other}.secrets (id int);`,
    );
    engine = new MysqlEngine({ url });
  });
  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await engine?.close();
    const [rows] = await admin.query<mysql.RowDataPacket[]>(
      "SELECT User, Host FROM mysql.user WHERE User LIKE 'custos\\_mytest%'",
    );
    for (const r of rows) await admin.query('DROP USER IF EXISTS ?@?', [r.User, r.Host]);
    await admin.query(`DROP DATABASE IF EXISTS ${db}; DROP DATABASE IF EXISTS ${other};`);
    await admin.end();
  });

  it('verifies the admin connection', async () => {
    await engine.verifyConnection();
  });

  it('mints a user that may read its database and nothing else', async () => {
    const expiresAt = new Date(Date.now() + 10 * 60_000);
    const cred = await engine.createCredential(defaultRole(), { expiresAt, usernamePrefix: 'mytest' });
    expect(cred.username).toMatch(/^custos_mytest_[a-z0-9]{16}$/);
    expect(cred.username.length).toBeLessThanOrEqual(32);
    expect(cred.expiresAt).toEqual(expiresAt);
    const user = await login(cred.username, cred.password);
    const [rows] = await user.query<mysql.RowDataPacket[]>('SELECT label FROM items');
    expect(rows.map((r) => r.label)).toEqual(['one']);
    await expect(user.query("INSERT INTO items VALUES (2, 'two')")).rejects.toMatchObject({
      code: 'ER_TABLEACCESS_DENIED_ERROR',
    });
    await expect(user.query(`SELECT * FROM ${other}.secrets`)).rejects.toMatchObject({
      code: 'ER_TABLEACCESS_DENIED_ERROR',
    });
    await engine.revokeCredential(defaultRole(), cred.username);
  });

  it('revocation refuses new logins, kills open sessions, drops the user, and is idempotent', async () => {
    const cred = await engine.createCredential(defaultRole(), {
      expiresAt: new Date(Date.now() + 60_000),
      usernamePrefix: 'mytest',
    });
    const session = await login(cred.username, cred.password);
    await session.query('SELECT 1');
    await engine.revokeCredential(defaultRole(), cred.username);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    // MariaDB answers an unknown user with ER_ACCESS_DENIED_ERROR or, after an auth-plugin switch, …_NO_PASSWORD_ERROR.
    await expect(login(cred.username, cred.password)).rejects.toMatchObject({
      code: expect.stringMatching(/^ER_ACCESS_DENIED/),
    });
    expect(await usersLike(cred.username)).toBe(0);
    await engine.revokeCredential(defaultRole(), cred.username);
    await engine.revokeCredential(defaultRole(), 'custos_mytest_never_existed');
  });

  it('runs custom statements (several per element) and custom revocation', async () => {
    const role = defaultRole({
      creationStatements: [
        `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT, INSERT ON ${db}.items TO '{{name}}'@'%';`,
      ],
      revocationStatements: [`REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{{name}}'@'%'`],
    });
    await engine.validateRole(role);
    const cred = await engine.createCredential(role, {
      expiresAt: new Date(Date.now() + 60_000),
      usernamePrefix: 'mytest',
    });
    const user = await login(cred.username, cred.password);
    await user.query("INSERT INTO items VALUES (3, 'three')");
    await engine.revokeCredential(role, cred.username);
    expect(await usersLike(cred.username)).toBe(0);
  });

  it('refuses invalid SQL with a VALIDATION error without the password, and leaves no user behind', async () => {
    const before = await usersLike('custos_validate_');
    // The CREATE USER runs (and commits) before the typo: validation must still drop it.
    const bad = defaultRole({
      creationStatements: [`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`, 'SELEKT 1'],
    });
    const e = await expectCode(engine.validateRole(bad), 'CUSTOS_ERR_VALIDATION');
    expect(e.message).toContain('SQL syntax');
    expect(e.message).not.toContain('\n');
    expect(await usersLike('custos_validate_')).toBe(before);

    // A statement that makes the server quote the password back.
    const leaky = defaultRole({
      creationStatements: [`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; SELECT * FROM \`{{password}}\`;`],
    });
    const leak = await expectCode(engine.validateRole(leaky), 'CUSTOS_ERR_VALIDATION');
    expect(leak.message).toContain('[redacted]');
    expect(leak.message).not.toMatch(PASSWORD_SHAPE);
    expect(JSON.stringify(leak)).not.toMatch(PASSWORD_SHAPE);
    expect(leak.cause).toBeUndefined();
    expect(await usersLike('custos_validate_')).toBe(before);

    const prefix = `mytest${unique().slice(0, 4)}`;
    const atIssue = await expectCode(
      engine.createCredential(leaky, { expiresAt: new Date(Date.now() + 60_000), usernamePrefix: prefix }),
      'CUSTOS_ERR_ENGINE_UNAVAILABLE',
    );
    expect(atIssue.message).not.toMatch(PASSWORD_SHAPE);
    expect(await usersLike(`custos_${prefix}_`)).toBe(0);

    await expectCode(engine.validateRole(defaultRole({ creationStatements: ['SELECT 1'] })), 'CUSTOS_ERR_VALIDATION');
    await expectCode(
      engine.validateRole(defaultRole({ revocationStatements: ['REVOKE NONSENSE FROM {{name}}'] })),
      'CUSTOS_ERR_VALIDATION',
    );
    expect(await usersLike('custos_validate_')).toBe(before);
  });

  it('renews (no-op that checks the user exists) and says LEASE_NOT_FOUND once it is gone', async () => {
    const cred = await engine.createCredential(defaultRole(), {
      expiresAt: new Date(Date.now() + 60_000),
      usernamePrefix: 'mytest',
    });
    await engine.renewCredential(cred.username, new Date(Date.now() + 120_000));
    await engine.revokeCredential(defaultRole(), cred.username);
    await expectCode(engine.renewCredential(cred.username, new Date()), 'CUSTOS_ERR_LEASE_NOT_FOUND');
  });

  it('sets the password of a static user', async () => {
    const name = `custos_mytest_st_${unique()}`;
    await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [name, `initial-${unique()}`]);
    await admin.query(`GRANT SELECT ON ${db}.items TO ?@'%'`, [name]);
    const password = `static-${unique()}${unique()}`;
    await engine.setPassword(name, password);
    const c = await login(name, password);
    await c.query('SELECT 1');
    await admin.query(`DROP USER ?@'%'`, [name]);
    await expectCode(engine.setPassword(name, password), 'CUSTOS_ERR_NOT_FOUND');
  });

  it('never sets the password of the account it is connected as, whatever its caller checked', async () => {
    const hashes = async () =>
      (
        await admin.query<mysql.RowDataPacket[]>('SELECT authentication_string AS h FROM mysql.user WHERE User = ?', [
          TEST_MARIADB.user,
        ])
      )[0].map((r) => r.h);
    const before = await hashes();
    await expectCode(engine.setPassword(TEST_MARIADB.user, `never-${unique()}`), 'CUSTOS_ERR_USER_NOT_ROTATABLE');
    expect(await hashes()).toEqual(before);
  });

  it('connects only where its egress policy allows', async () => {
    const refused = new MysqlEngine({ url, egress: new EgressPolicy() });
    const allowed = new MysqlEngine({ url, egress: new EgressPolicy({ allow: ['127.0.0.1:3306'] }) });
    try {
      const e = await expectCode(refused.verifyConnection(), 'CUSTOS_ERR_EGRESS_REFUSED');
      expect(e.message).toContain('--egress-allow 127.0.0.1');
      await expectCode(refused.testCredential('someone', 'x'), 'CUSTOS_ERR_EGRESS_REFUSED');
      await allowed.verifyConnection();
    } finally {
      await Promise.all([refused.close(), allowed.close()]);
    }
  });

  it('tests a credential with a new login: the right password passes, a wrong one fails without either in the error', async () => {
    const name = `custos_mytest_try_${unique()}`;
    const password = `try-${unique()}${unique()}%@/:`;
    await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [name, password]);
    await admin.query(`GRANT SELECT ON ${db}.items TO ?@'%'`, [name]);
    try {
      await engine.testCredential(name, password);
      const wrong = `wrong-${unique()}${unique()}`;
      const e = await expectCode(engine.testCredential(name, wrong), 'CUSTOS_ERR_ROTATION_FAILED');
      expect(e.message).toMatch(/denied/i);
      expect(JSON.stringify(e) + e.message).not.toContain(wrong);
      expect(JSON.stringify(e) + e.message).not.toContain(password);
      expect(e.cause).toBeUndefined();
    } finally {
      await admin.query(`DROP USER IF EXISTS ?@'%'`, [name]);
    }
    await expectCode(engine.testCredential(name, password), 'CUSTOS_ERR_ROTATION_FAILED');
  });

  it('rotates the admin password (on a dedicated admin user): the old password fails, the new URL works', async () => {
    const name = `custos_mytest_ad_${unique()}`;
    const oldPassword = `old-${unique()}${unique()}`;
    await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [name, oldPassword]);
    await admin.query(`GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION`, [name]);
    const own = new MysqlEngine({
      url: `mysql://${name}:${oldPassword}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/${db}`,
    });
    try {
      const { url: next } = await own.rotateRootPassword();
      const newPassword = decodeURIComponent(new URL(next).password);
      expect(newPassword).not.toBe(oldPassword);
      await expect(login(name, oldPassword)).rejects.toMatchObject({ code: 'ER_ACCESS_DENIED_ERROR' });
      const c = await mysql.createConnection({ uri: next });
      await c.query('SELECT 1');
      await c.end();
      // The engine keeps working on the new password.
      const cred = await own.createCredential(defaultRole(), {
        expiresAt: new Date(Date.now() + 60_000),
        usernamePrefix: 'mytest',
      });
      await own.revokeCredential(defaultRole(), cred.username);
    } finally {
      await own.close();
      await admin.query(`DROP USER IF EXISTS ?@'%'`, [name]);
    }
  });

  it('maps an unreachable server to ENGINE_UNAVAILABLE without the URL password', async () => {
    const password = `pw-${unique()}${unique()}`;
    const down = new MysqlEngine({ url: `mysql://someone:${password}@127.0.0.1:1/x` });
    try {
      const e = await expectCode(down.verifyConnection(), 'CUSTOS_ERR_ENGINE_UNAVAILABLE');
      expect(JSON.stringify(e) + e.message).not.toContain(password);
    } finally {
      await down.close();
    }
  });
});
