import { CustosError, EgressPolicy } from '@custos/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import {
  defaultRole,
  PASSWORD_SHAPE,
  scramVerifierMatches,
  unique,
  withUser,
} from '../test-support/engine-test-helpers.js';
import { PostgresEngine } from './postgres-engine.js';

const expectCode = async (p: Promise<unknown>, code: string): Promise<CustosError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CustosError);
  expect((e as CustosError).code).toBe(code);
  return e as CustosError;
};

describe.skipIf(!hasPostgres())('PostgresEngine (real PostgreSQL)', () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let engine: PostgresEngine;
  const clients: pg.Client[] = [];

  async function login(user: string, password: string): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: withUser(db.url, user, password) });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  }
  const roleExists = async (name: string) =>
    (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  const rolesLike = async (prefix: string) =>
    Number((await admin.query('SELECT count(*) AS n FROM pg_roles WHERE rolname LIKE $1', [`${prefix}%`])).rows[0].n);

  beforeAll(async () => {
    db = await createTestDatabase();
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('CREATE TABLE items (id int primary key, label text)');
    await admin.query("INSERT INTO items VALUES (1, 'one')");
    await admin.query('CREATE SCHEMA hidden');
    await admin.query('CREATE TABLE hidden.secrets (id int)');
    engine = new PostgresEngine({ url: db.url });
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await engine?.close();
    // Roles are cluster-wide: drop any this file left (a failed test).
    const { rows } = await admin.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'custos\\_%'");
    for (const r of rows) {
      if (!String(r.rolname).startsWith('custos_pgtest')) continue;
      await admin.query(`DROP OWNED BY "${r.rolname}"`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => undefined);
    }
    await admin.end();
    await db.drop();
  });

  it('verifies the admin connection', async () => {
    await engine.verifyConnection();
  });

  it('mints a login role that may read public tables and nothing else, valid until the lease end', async () => {
    const expiresAt = new Date(Date.now() + 10 * 60_000);
    const cred = await engine.createCredential(defaultRole(), { expiresAt, usernamePrefix: 'pgtest read' });
    expect(cred.username).toMatch(/^custos_pgtest_read_[a-z0-9]{16}$/);
    expect(cred.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { rows } = await admin.query('SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = $1', [
      cred.username,
    ]);
    expect(rows[0].rolcanlogin).toBe(true);
    expect((rows[0].rolvaliduntil as Date).getTime()).toBe(expiresAt.getTime());

    const user = await login(cred.username, cred.password);
    expect((await user.query('SELECT current_user AS u')).rows[0].u).toBe(cred.username);
    expect((await user.query('SELECT label FROM items')).rows).toEqual([{ label: 'one' }]);
    await expect(user.query("INSERT INTO items VALUES (2, 'two')")).rejects.toMatchObject({ code: '42501' });
    await expect(user.query('SELECT * FROM hidden.secrets')).rejects.toMatchObject({ code: '42501' });
    await engine.revokeCredential(defaultRole(), cred.username);
  });

  it('revocation refuses new logins, terminates open sessions, drops the role, and is idempotent', async () => {
    const cred = await engine.createCredential(defaultRole(), {
      expiresAt: new Date(Date.now() + 60_000),
      usernamePrefix: 'pgtest',
    });
    const session = await login(cred.username, cred.password);
    await session.query('SELECT 1');
    await engine.revokeCredential(defaultRole(), cred.username);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    // 28000 where loopback is trusted (no such role), 28P01 where passwords are checked.
    await expect(login(cred.username, cred.password)).rejects.toMatchObject({ code: expect.stringMatching(/^28/) });
    expect(await roleExists(cred.username)).toBe(false);
    await engine.revokeCredential(defaultRole(), cred.username);
    await engine.revokeCredential(defaultRole(), 'custos_pgtest_never_existed');
  });

  it('revokes a user that owns objects (REASSIGN OWNED / DROP OWNED)', async () => {
    const role = defaultRole({
      creationStatements: [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
        'GRANT USAGE, CREATE ON SCHEMA public TO "{{name}}"; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
      ],
      revocationStatements: ['REVOKE ALL ON SCHEMA public FROM "{{name}}";'],
    });
    await engine.validateRole(role);
    const cred = await engine.createCredential(role, {
      expiresAt: new Date(Date.now() + 60_000),
      usernamePrefix: 'pgtest',
    });
    const user = await login(cred.username, cred.password);
    const table = `made_${unique()}`;
    await user.query(`CREATE TABLE ${table} (x int)`);
    await engine.revokeCredential(role, cred.username);
    expect(await roleExists(cred.username)).toBe(false);
    const owner = await admin.query('SELECT tableowner FROM pg_tables WHERE tablename = $1', [table]);
    expect(owner.rows[0].tableowner).toBe('postgres');
  });

  it('creates and revokes concurrently (regression: "tuple concurrently updated" on shared GRANTs)', async () => {
    const creds = await Promise.all(
      Array.from({ length: 24 }, () =>
        engine.createCredential(defaultRole(), {
          expiresAt: new Date(Date.now() + 60_000),
          usernamePrefix: 'pgtest conc',
        }),
      ),
    );
    expect(new Set(creds.map((c) => c.username)).size).toBe(24);
    await Promise.all(creds.map((c) => engine.revokeCredential(defaultRole(), c.username)));
    expect(await rolesLike('custos_pgtest_conc_')).toBe(0);
  });

  it('refuses invalid SQL with a VALIDATION error that carries the first line and no password, leaving no role', async () => {
    const before = await rolesLike('custos_validate_');
    const bad = defaultRole({ creationStatements: ['CREATE ROLE "{{name}}" WITH LOGIN; SELEKT 1;'] });
    const e = await expectCode(engine.validateRole(bad), 'CUSTOS_ERR_VALIDATION');
    expect(e.message).toContain('syntax error at or near "SELEKT"');
    expect(e.message).not.toContain('\n');

    // A statement that makes PostgreSQL quote the password back in its error.
    const leaky = defaultRole({
      creationStatements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; SELECT '{{password}}'::int;`],
    });
    const leak = await expectCode(engine.validateRole(leaky), 'CUSTOS_ERR_VALIDATION');
    expect(leak.message).toContain('invalid input syntax for type integer');
    expect(leak.message).toContain('[redacted]');
    expect(leak.message).not.toMatch(PASSWORD_SHAPE);
    expect(JSON.stringify(leak)).not.toMatch(PASSWORD_SHAPE);
    expect(leak.cause).toBeUndefined();

    // The same statements at issue time: refused, no password, nothing left behind.
    const prefix = `pgtest_${unique()}`;
    const atIssue = await expectCode(
      engine.createCredential(leaky, { expiresAt: new Date(Date.now() + 60_000), usernamePrefix: prefix }),
      'CUSTOS_ERR_ENGINE_UNAVAILABLE',
    );
    expect(atIssue.message).not.toMatch(PASSWORD_SHAPE);
    expect(await rolesLike(`custos_${prefix}_`)).toBe(0);

    // Statements that do not create the login role are refused too.
    await expectCode(engine.validateRole(defaultRole({ creationStatements: ['SELECT 1'] })), 'CUSTOS_ERR_VALIDATION');
    await expectCode(engine.validateRole(defaultRole({ creationStatements: ['{{nope}}'] })), 'CUSTOS_ERR_VALIDATION');
    // Invalid revocation statements are caught when the role is written, too.
    await expectCode(
      engine.validateRole(defaultRole({ revocationStatements: ['REVOKE ALL ON TABLE no_such_table FROM "{{name}}"'] })),
      'CUSTOS_ERR_VALIDATION',
    );
    // A COMMIT inside the statements would make the rollback keep the user: refused, and the user dropped.
    const committing = defaultRole({
      creationStatements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; COMMIT;`],
    });
    const ended = await expectCode(engine.validateRole(committing), 'CUSTOS_ERR_VALIDATION');
    expect(ended.message).toContain('must not end the transaction');
    const prefix2 = `pgtest_${unique()}`;
    await expectCode(
      engine.createCredential(committing, { expiresAt: new Date(Date.now() + 60_000), usernamePrefix: prefix2 }),
      'CUSTOS_ERR_VALIDATION',
    );
    expect(await rolesLike(`custos_${prefix2}_`)).toBe(0);
    await engine.validateRole(defaultRole());
    expect(await rolesLike('custos_validate_')).toBe(before);
  });

  it('renews VALID UNTIL, and says LEASE_NOT_FOUND for a user that is gone', async () => {
    const cred = await engine.createCredential(defaultRole(), {
      expiresAt: new Date(Date.now() + 60_000),
      usernamePrefix: 'pgtest',
    });
    const later = new Date(Date.now() + 3_600_000);
    await engine.renewCredential(cred.username, later);
    const { rows } = await admin.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [cred.username]);
    expect((rows[0].rolvaliduntil as Date).getTime()).toBe(later.getTime());
    await engine.revokeCredential(defaultRole(), cred.username);
    await expectCode(engine.renewCredential(cred.username, later), 'CUSTOS_ERR_LEASE_NOT_FOUND');
  });

  it('sets the password of a static user', async () => {
    const name = `custos_pgtest_static_${unique()}`;
    await admin.query(`CREATE ROLE "${name}" LOGIN PASSWORD 'initial-${unique()}'`);
    const password = `static-${unique()}${unique()}`;
    await engine.setPassword(name, password);
    const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [name]);
    expect(scramVerifierMatches(rows[0].rolpassword, password)).toBe(true);
    await admin.query(`DROP ROLE "${name}"`);
    await expectCode(engine.setPassword(name, password), 'CUSTOS_ERR_NOT_FOUND');
  });

  it('never sets the password of the account it is connected as, whatever its caller checked', async () => {
    const self = decodeURIComponent(new URL(db.url).username);
    const before = (await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [self])).rows[0];
    await expectCode(engine.setPassword(self, `never-${unique()}`), 'CUSTOS_ERR_USER_NOT_ROTATABLE');
    const after = (await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [self])).rows[0];
    expect(after).toEqual(before);
  });

  it('connects only where its egress policy allows, and says which entry would allow it', async () => {
    const refused = new PostgresEngine({ url: db.url, egress: new EgressPolicy() });
    // A `host=` parameter never reaches pg: the URL is refused before any pool exists.
    await expectCode(
      Promise.resolve().then(
        () =>
          new PostgresEngine({
            url: 'postgres://someone@db.example:5432/x?host=127.0.0.1',
            egress: new EgressPolicy(),
          }),
      ),
      'CUSTOS_ERR_ENGINE_URL_REFUSED',
    );
    const allowed = new PostgresEngine({ url: db.url, egress: new EgressPolicy({ allow: ['127.0.0.1'] }) });
    try {
      const e = await expectCode(refused.verifyConnection(), 'CUSTOS_ERR_EGRESS_REFUSED');
      expect(e.message).toContain('--egress-allow 127.0.0.1');
      await expectCode(refused.testCredential('someone', 'x'), 'CUSTOS_ERR_EGRESS_REFUSED');
      await allowed.verifyConnection();
    } finally {
      await Promise.all([refused.close(), allowed.close()]);
    }
  });

  it('tests a credential with a new login; an unknown role fails without the password in the error', async () => {
    // This server trusts loopback logins, so a wrong password would pass:
    // the refused case is a role that does not exist (refused even under trust).
    const name = `custos_pgtest_try_${unique()}`;
    const password = `try-${unique()}${unique()}%@/:`;
    await admin.query(`CREATE ROLE "${name}" LOGIN PASSWORD '${password}'`);
    try {
      await engine.testCredential(name, password);
    } finally {
      await admin.query(`DROP ROLE "${name}"`);
    }
    const e = await expectCode(engine.testCredential(name, password), 'CUSTOS_ERR_ROTATION_FAILED');
    expect(e.message).toContain(name);
    expect(JSON.stringify(e) + e.message).not.toContain(password);
    expect(e.cause).toBeUndefined();

    const down = new PostgresEngine({ url: 'postgres://someone@127.0.0.1:1/x' });
    try {
      const unreachable = await expectCode(down.testCredential(name, password), 'CUSTOS_ERR_ENGINE_UNAVAILABLE');
      expect(unreachable.message).not.toContain(password);
    } finally {
      await down.close();
    }
  });

  it('rotates the admin password (on a dedicated admin role): the new URL works, the old password does not', async () => {
    const name = `custos_pgtest_admin_${unique()}`;
    const oldPassword = `old-${unique()}${unique()}`;
    await admin.query(`CREATE ROLE "${name}" LOGIN CREATEROLE PASSWORD '${oldPassword}'`);
    await admin.query(`GRANT pg_signal_backend TO "${name}"`);
    const oldUrl = withUser(db.url, name, oldPassword);
    const own = new PostgresEngine({ url: oldUrl });
    try {
      const { url } = await own.rotateRootPassword();
      const newPassword = decodeURIComponent(new URL(url).password);
      expect(newPassword).not.toBe(oldPassword);
      expect(new URL(url).username).toBe(name);
      const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [name]);
      expect(scramVerifierMatches(rows[0].rolpassword, newPassword)).toBe(true);
      expect(scramVerifierMatches(rows[0].rolpassword, oldPassword)).toBe(false);
      // The new URL logs in, and the engine keeps working on it.
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(name);
      await c.end();
      await own.verifyConnection();
      // A password check at login is only observable where the server asks
      // for one; the machine's loopback may be `trust` (then the verifier
      // check above is the proof).
      const enforced = await login(name, `wrong-${unique()}`).then(
        (cl) => cl.end().then(() => false),
        () => true,
      );
      if (enforced) await expect(login(name, oldPassword)).rejects.toMatchObject({ code: '28P01' });
      else
        console.warn(
          '[engines test] PostgreSQL trusts loopback logins: old-password refusal checked via the SCRAM verifier',
        );
    } finally {
      await own.close();
      await admin.query(`DROP ROLE IF EXISTS "${name}"`);
    }
  });

  it('maps an unreachable database to ENGINE_UNAVAILABLE without the URL password', async () => {
    const password = `pw-${unique()}${unique()}`;
    const down = new PostgresEngine({ url: `postgres://someone:${password}@127.0.0.1:1/x` });
    try {
      const e = await expectCode(down.verifyConnection(), 'CUSTOS_ERR_ENGINE_UNAVAILABLE');
      expect(JSON.stringify(e) + e.message).not.toContain(password);
      await expectCode(
        down.createCredential(defaultRole(), { expiresAt: new Date(Date.now() + 60_000), usernamePrefix: 'x' }),
        'CUSTOS_ERR_ENGINE_UNAVAILABLE',
      );
    } finally {
      await down.close();
    }
  });

  it('refuses an admin that cannot create roles', async () => {
    const name = `custos_pgtest_weak_${unique()}`;
    await admin.query(`CREATE ROLE "${name}" LOGIN`);
    const weak = new PostgresEngine({ url: withUser(db.url, name, 'x') });
    try {
      await expectCode(weak.verifyConnection(), 'CUSTOS_ERR_ENGINE_UNAVAILABLE');
    } finally {
      await weak.close();
      await admin.query(`DROP ROLE "${name}"`);
    }
  });
});
