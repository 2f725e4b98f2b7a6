import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEngine } from '@custos/engines';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hasMariadb, TEST_MARIADB } from '../../../../test-support/mariadb.js';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from '../test-server.js';

// Attack class: a narrower principal configures something that later runs
// with custos's own power (a rotator runs ALTER ROLE as the engine's admin;
// a webhook rotator ships a secret out). Configuring it must require the
// permissions it will exercise, and what it exercises is checked again when
// it runs, since the grants it relied on can change in between.

const suffix = () => randomBytes(4).toString('hex');
const mariadb = await hasMariadb();
const permit = (action: string, folder: string) =>
  `permit(principal, action == Custos::Action::"${action}", resource in Custos::Path::"${folder}");`;

describe.skipIf(!hasPostgres())('delegated power: rotators on PostgreSQL', () => {
  let s: TestServer;
  let target: TestDatabase;
  let admin: pg.Client;
  /** A dedicated admin user custos connects as (CREATEROLE, not superuser), as in production. */
  const custosAdmin = `custos_admin_${suffix()}`;
  const victim = `victim_${suffix()}`;
  const app = `app_${suffix()}`;
  /** rotate on kv/mine/ and nothing else: the narrow operator of issue 11 #3. */
  let narrow: string;
  /** rotate on kv/mine/ and on the engine's user `app`. */
  let engineUser: string;

  const verifier = async (user: string) =>
    (await admin.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]))
      .rows[0]?.rolpassword;
  const token = async (policies: string[]) =>
    (await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies, ttl: '30m' } })).json()
      .token as string;
  const putLogin = (path: string, username: string) =>
    s.call({
      method: 'PUT',
      url: `/v1/secrets/data/${path}`,
      payload: { data: { username, password: fakeSecret('pw') } },
    });
  const configure = (path: string, username: string, as: string, engine = 'pg1') =>
    s.call({
      method: 'PUT',
      url: `/v1/rotation/${path}`,
      token: as,
      payload: { rotator: { type: 'database', engine, username } },
    });

  beforeAll(async () => {
    target = await createTestDatabase();
    admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    for (const user of [victim, app])
      await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD '${fakeSecret('initial')}'`);
    await admin.query(`CREATE ROLE ${custosAdmin} LOGIN CREATEROLE PASSWORD '${fakeSecret('admin')}'`);
    // CREATEROLE alone may not alter other roles on PostgreSQL 16+: grant what a real setup grants.
    for (const user of [victim, app]) {
      await admin.query(`GRANT ${user} TO ${custosAdmin} WITH ADMIN OPTION`).catch(() => undefined);
    }
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    const url = new URL(target.url);
    url.username = custosAdmin;
    url.password = 'trust-auth-ignores-it';
    const engine = await s.call({
      method: 'PUT',
      url: '/v1/engines/pg1',
      payload: { type: 'postgres', url: url.toString(), rotatable_users: [app] },
    });
    expect(engine.statusCode).toBe(200);
    // The superuser engine: its admin is `postgres` (the test cluster's superuser).
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/pgsuper', payload: { type: 'postgres', url: target.url } }))
        .statusCode,
    ).toBe(200);
    for (const [name, text] of [
      ['mine-rotate', permit('rotate', 'kv/mine/')],
      ['mine-rotate-app', `${permit('rotate', 'kv/mine/')}\n${permit('rotate', `sys/engines/pg1/users/${app}`)}`],
      ['engine-users', permit('rotate', 'sys/engines/')],
    ] as const) {
      expect((await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } })).statusCode).toBe(
        200,
      );
    }
    narrow = await token(['mine-rotate']);
    engineUser = await token(['mine-rotate-app']);
  });
  afterAll(async () => {
    await s?.close();
    await admin?.query(`DROP ROLE IF EXISTS ${victim}, ${app}, ${custosAdmin}`).catch(() => undefined);
    await admin?.end();
    await target?.drop();
  });

  it('an operator with only rotate on a secret cannot point the database rotator at another account (victim)', async () => {
    const before = await verifier(victim);
    await putLogin('kv/mine/db', victim);
    const configured = await configure('kv/mine/db', victim, narrow);
    expect(configured.statusCode).toBe(403);
    expect(configured.json().error.code).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    // And rotating now (the `--now` half of the attack) does not touch the victim.
    await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/mine/db', token: narrow });
    expect(await verifier(victim)).toBe(before);
  });

  it('…nor at postgres, nor at custos’s own admin user', async () => {
    for (const username of ['postgres', custosAdmin]) {
      const before = await verifier(username);
      await putLogin('kv/mine/db2', username);
      const configured = await configure('kv/mine/db2', username, narrow);
      expect(configured.statusCode, username).toBe(403);
      await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/mine/db2', token: narrow });
      expect(await verifier(username), username).toBe(before);
    }
  });

  it('an engine’s admin account is never a database-rotator target, even for root: only rotate-root changes it', async () => {
    for (const [engine, username] of [
      ['pg1', custosAdmin],
      ['pgsuper', 'postgres'],
    ] as const) {
      await putLogin('kv/ops/admin', username);
      const configured = await configure('kv/ops/admin', username, s.rootToken, engine);
      expect(configured.statusCode, username).toBe(403);
      expect(configured.json().error.code, username).toBe('CUSTOS_ERR_USER_NOT_ROTATABLE');
    }
    // Nor can it be put on an engine's rotatable list.
    const listed = await s.call({
      method: 'PUT',
      url: '/v1/engines/pg1/rotatable-users',
      payload: { users: [app, custosAdmin] },
    });
    expect(listed.statusCode).toBe(400);
    expect(listed.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
  });

  it('a user the engine does not list is refused even with rotate on every engine path', async () => {
    const broad = await token(['mine-rotate', 'engine-users']);
    await putLogin('kv/mine/db3', victim);
    const configured = await configure('kv/mine/db3', victim, broad);
    expect(configured.statusCode).toBe(403);
    expect(configured.json().error.code).toBe('CUSTOS_ERR_USER_NOT_ROTATABLE');
  });

  it('rotate on the engine’s user path and a listed user: the rotation runs', async () => {
    const before = await verifier(app);
    await putLogin('kv/mine/app', app);
    const configured = await configure('kv/mine/app', app, engineUser);
    expect(configured.statusCode).toBe(200);
    const rotated = await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/mine/app', token: engineUser });
    expect(rotated.statusCode).toBe(200);
    expect(await verifier(app)).not.toBe(before);
  });

  it('the engine’s list is checked again when a rotation runs, on demand and on schedule', async () => {
    await putLogin('kv/mine/later', app);
    const configured = await s.call({
      method: 'PUT',
      url: '/v1/rotation/kv/mine/later',
      token: engineUser,
      payload: { rotator: { type: 'database', engine: 'pg1', username: app }, every: '1h' },
    });
    expect(configured.statusCode).toBe(200);
    // The operator takes `app` off the list after the policy was set.
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/pg1/rotatable-users', payload: { users: [] } })).statusCode,
    ).toBe(200);
    try {
      const before = await verifier(app);
      const now = await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/mine/later', token: engineUser });
      expect(now.statusCode).toBe(502);
      expect(now.json().error.message).toContain('CUSTOS_ERR_USER_NOT_ROTATABLE');
      // Scheduled: the policy falls due; the scheduler's round runs it.
      await makeDue(s, 'kv/mine/later');
      const { rotation } = s.node.services();
      expect(await rotation.rotateDue()).toBe(1);
      expect((await rotation.read('kv/mine/later')).last_error).toBe('CUSTOS_ERR_USER_NOT_ROTATABLE');
      expect(await verifier(app)).toBe(before);
    } finally {
      await s.call({ method: 'PUT', url: '/v1/engines/pg1/rotatable-users', payload: { users: [app] } });
    }
  });
});

// Engine role statements run as the engine's admin when a credential is
// issued: writing statement text is configuring something that runs with the
// engine's power, so it belongs to whoever holds the engine itself (`write
// sys/engines/<engine>`, who sets its URL and rotatable users). A holder of
// only the role-level grant may write roles from the built-in statements.
const roleWriterPolicy = (engine: string) =>
  `${permit('write', `sys/engines/${engine}/roles/`)}\n${permit('issue', `${engine}/`)}`;
const engineOwnerPolicy = (engine: string) =>
  `${roleWriterPolicy(engine)}\npermit(principal, action == Custos::Action::"write", resource == Custos::Path::"sys/engines/${engine}");`;

describe.skipIf(!hasPostgres())('delegated power: engine role statements on PostgreSQL', () => {
  let s: TestServer;
  let target: TestDatabase;
  let admin: pg.Client;
  const custosAdmin = `custos_admin_${suffix()}`;
  const victim = `victim_${suffix()}`;
  let roleWriter: string;
  let engineOwner: string;

  const verifier = async (user: string) =>
    (await admin.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]))
      .rows[0]?.rolpassword;
  const writeRole = (role: string, as: string, payload: Record<string, unknown>) =>
    s.call({ method: 'PUT', url: `/v1/engines/pg1/roles/${role}`, token: as, payload });
  const issue = (role: string, as: string) => s.call({ method: 'POST', url: `/v1/creds/pg1/${role}`, token: as });

  beforeAll(async () => {
    target = await createTestDatabase();
    admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    await admin.query(`CREATE ROLE ${victim} LOGIN PASSWORD '${fakeSecret('initial')}'`);
    await admin.query(`CREATE ROLE ${custosAdmin} LOGIN CREATEROLE PASSWORD '${fakeSecret('admin')}'`);
    // What makes the attack real on PostgreSQL 16+: the admin may alter the victim.
    await admin.query(`GRANT ${victim} TO ${custosAdmin} WITH ADMIN OPTION`).catch(() => undefined);
    await admin.query(`GRANT ALL ON SCHEMA public TO ${custosAdmin}`);
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    const url = new URL(target.url);
    url.username = custosAdmin;
    url.password = 'trust-auth-ignores-it';
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/pg1', payload: { type: 'postgres', url: url.toString() } }))
        .statusCode,
    ).toBe(200);
    for (const [name, text] of [
      ['role-writer', roleWriterPolicy('pg1')],
      ['engine-owner', engineOwnerPolicy('pg1')],
    ] as const) {
      expect((await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } })).statusCode).toBe(
        200,
      );
    }
    const token = async (policies: string[]) =>
      (await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies, ttl: '30m' } })).json()
        .token as string;
    roleWriter = await token(['role-writer']);
    engineOwner = await token(['engine-owner']);
  });
  afterAll(async () => {
    await s?.close();
    await admin?.query(`DROP ROLE IF EXISTS ${victim}`).catch(() => undefined);
    await admin?.query(`DROP OWNED BY ${custosAdmin}`).catch(() => undefined);
    await admin?.query(`DROP ROLE IF EXISTS ${custosAdmin}`).catch(() => undefined);
    await admin?.end();
    await target?.drop();
  });

  it('a holder of one engine role’s write grant cannot take over another database account through its statements', async () => {
    const before = await verifier(victim);
    const written = await writeRole('evil', roleWriter, {
      creation_statements: [
        `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
        `ALTER ROLE ${victim} WITH PASSWORD '{{password}}'`,
      ],
    });
    expect(written.statusCode).toBe(403);
    expect(written.json().error.code).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect((await issue('evil', roleWriter)).statusCode).not.toBe(200);
    expect(await verifier(victim)).toBe(before);
  });

  it('…nor the engine’s own admin account (ALTER ROLE CURRENT_USER), nor through revocation statements', async () => {
    const before = await verifier(custosAdmin);
    for (const payload of [
      {
        creation_statements: [
          `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
          `ALTER ROLE CURRENT_USER WITH PASSWORD '{{password}}'`,
        ],
      },
      { revocation_statements: [`ALTER ROLE ${victim} WITH PASSWORD 'fake-revocation-takeover'`] },
    ]) {
      const written = await writeRole('evil2', roleWriter, payload);
      expect(written.statusCode, JSON.stringify(payload)).toBe(403);
      expect((await issue('evil2', roleWriter)).statusCode).not.toBe(200);
    }
    expect(await verifier(custosAdmin)).toBe(before);
  });

  it('a role-level holder may write a role from the built-in statements, and change only the TTLs of the owner’s custom role', async () => {
    const builtIn = await writeRole('reader', roleWriter, { default_ttl: '10m' });
    expect(builtIn.statusCode).toBe(200);
    expect(builtIn.json().creation_statements).toEqual([]);
    const issued = await issue('reader', roleWriter);
    expect(issued.statusCode).toBe(200);
    // The engine's owner writes statements; the role-level holder may then change the TTLs, not the text.
    const custom = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`];
    expect((await writeRole('custom', engineOwner, { creation_statements: custom })).statusCode).toBe(200);
    const ttl = await writeRole('custom', roleWriter, { max_ttl: '2h' });
    expect(ttl.statusCode).toBe(200);
    expect(ttl.json().creation_statements).toEqual(custom);
    // Resetting to the built-in statements is writing no statement text: allowed.
    const reset = await writeRole('custom', roleWriter, { creation_statements: [] });
    expect(reset.statusCode).toBe(200);
    expect(reset.json().creation_statements).toEqual([]);
  });

  it('the engine’s owner (write on sys/engines/<engine>) may write custom statements', async () => {
    const written = await writeRole('granted', engineOwner, {
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`],
      revocation_statements: ['SELECT 1'],
    });
    expect(written.statusCode).toBe(200);
    expect((await issue('granted', engineOwner)).statusCode).toBe(200);
  });

  it('the refusal is audited with its reason', async () => {
    await writeRole('evil3', roleWriter, { creation_statements: [`CREATE ROLE "{{name}}" LOGIN`] });
    const events = await auditEvents(s.storage);
    const refused = events.filter(
      (e) =>
        (e.request as { path?: string } | undefined)?.path === 'sys/engines/pg1/roles/evil3' && e.decision === 'deny',
    );
    expect(refused.map((e) => e.reason)).toContain('custom_statements_require_engine_write');
  });
});

// Whoever writes an engine's URL chooses how custos's driver runs: a query
// parameter the driver takes as an option runs with custos's process. Only
// sslmode, connect_timeout (and application_name) get through.
describe.skipIf(!mariadb)('delegated power: engine URL options on MariaDB', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite', { engineFactory: createEngine });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('an engine URL cannot switch on driver debugging, which would print packets (and passwords) past the logger', async () => {
    const log = vi.spyOn(console, 'log');
    try {
      const url = `mysql://${TEST_MARIADB.user}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/mysql?debug=true`;
      const response = await s.call({ method: 'PUT', url: '/v1/engines/chatty', payload: { type: 'mysql', url } });
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe('CUSTOS_ERR_ENGINE_URL_REFUSED');
      expect(response.json().error.message).toContain('"debug"');
      expect(log).not.toHaveBeenCalled();
      expect((await s.call({ method: 'GET', url: '/v1/engines/chatty' })).statusCode).toBe(404);
    } finally {
      log.mockRestore();
    }
  });

  it('an engine URL cannot connect as another user than the one custos checks (?user=), nor through another socket', async () => {
    for (const query of [
      'user=root',
      'socketPath=/run/mysqld/mysqld.sock',
      'localAddress=127.0.0.2',
      'flags=LOCAL_FILES',
    ]) {
      const url = `mysql://someone_else@${TEST_MARIADB.host}:${TEST_MARIADB.port}/mysql?${query}`;
      const response = await s.call({
        method: 'PUT',
        url: '/v1/engines/sneaky',
        payload: { type: 'mysql', url, rotatable_users: ['root'] },
      });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().error.code, query).toBe('CUSTOS_ERR_ENGINE_URL_REFUSED');
    }
  });
});

describe.skipIf(!mariadb)('delegated power: engine role statements on MariaDB', () => {
  let s: TestServer;
  let admin: mysql.Connection;
  const victim = `victim_${suffix()}`;
  /** The engine's own admin: a dedicated account, so a regression could never touch the shared server's root. */
  const engineAdmin = `adm_${suffix()}`;
  const engineAdminPassword = fakeSecret('adm').replace(/[^A-Za-z0-9]/g, '');
  let roleWriter: string;

  const hash = async (user: string) =>
    (
      (await admin.query('SELECT authentication_string AS h FROM mysql.user WHERE User = ?', [user])) as [
        Array<{ h: string }>,
        unknown,
      ]
    )[0].map((r) => r.h);

  beforeAll(async () => {
    admin = await mysql.createConnection({ ...TEST_MARIADB });
    await admin.query(`CREATE USER '${victim}'@'%' IDENTIFIED BY '${fakeSecret('v')}'`);
    await admin.query(`CREATE USER '${engineAdmin}'@'%' IDENTIFIED BY '${engineAdminPassword}'`);
    await admin.query(`GRANT ALL PRIVILEGES ON *.* TO '${engineAdmin}'@'%' WITH GRANT OPTION`);
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    const url = `mysql://${engineAdmin}:${engineAdminPassword}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/mysql`;
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/maria', payload: { type: 'mysql', url } })).statusCode,
    ).toBe(200);
    await s.call({ method: 'PUT', url: '/v1/policies/role-writer', payload: { policy: roleWriterPolicy('maria') } });
    roleWriter = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['role-writer'], ttl: '10m' } })
    ).json().token as string;
  });
  afterAll(async () => {
    await s?.close();
    await admin?.query(`DROP USER IF EXISTS '${victim}'@'%', '${engineAdmin}'@'%'`);
    await admin?.end();
  });

  it('a holder of one engine role’s write grant cannot change another account’s password (or the engine admin’s) through its statements', async () => {
    const before = { victim: await hash(victim), admin: await hash(engineAdmin) };
    for (const target of [`'${victim}'@'%'`, 'CURRENT_USER()']) {
      const written = await s.call({
        method: 'PUT',
        url: '/v1/engines/maria/roles/evil',
        token: roleWriter,
        payload: {
          creation_statements: [
            `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`,
            `ALTER USER ${target} IDENTIFIED BY '{{password}}'`,
          ],
        },
      });
      expect(written.statusCode, target).toBe(403);
      expect((await s.call({ method: 'POST', url: '/v1/creds/maria/evil', token: roleWriter })).statusCode).not.toBe(
        200,
      );
    }
    expect({ victim: await hash(victim), admin: await hash(engineAdmin) }).toEqual(before);
    // The built-in statements remain the role-level holder's to use.
    const builtIn = await s.call({
      method: 'PUT',
      url: '/v1/engines/maria/roles/reader',
      token: roleWriter,
      payload: { default_ttl: '5m' },
    });
    expect(builtIn.statusCode).toBe(200);
    const issued = await s.call({ method: 'POST', url: '/v1/creds/maria/reader', token: roleWriter });
    expect(issued.statusCode).toBe(200);
    await s.call({ method: 'POST', url: `/v1/leases/${issued.json().lease_id}/revoke` });
  });
});

/** Moves a scheduled rotation policy's due time into the past, as if its interval had elapsed. */
async function makeDue(s: TestServer, path: string): Promise<void> {
  const entry = await s.storage.entries.get('rotation.config', path);
  if (!entry) throw new Error('no rotation policy stored');
  await s.storage.entries.put('rotation.config', path, entry.value, { expiresAt: Date.now() - 1 });
}

describe.skipIf(!mariadb)('delegated power: rotators on MariaDB', () => {
  let s: TestServer;
  let admin: mysql.Connection;
  const victim = `victim_${suffix()}`;

  beforeAll(async () => {
    admin = await mysql.createConnection({ ...TEST_MARIADB });
    await admin.query(`CREATE USER '${victim}'@'%' IDENTIFIED BY '${fakeSecret('v')}'`);
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    const url = `mysql://${TEST_MARIADB.user}@${TEST_MARIADB.host}:${TEST_MARIADB.port}/mysql`;
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/maria', payload: { type: 'mysql', url } })).statusCode,
    ).toBe(200);
    await s.call({ method: 'PUT', url: '/v1/policies/mine', payload: { policy: permit('rotate', 'kv/mine/') } });
  });
  afterAll(async () => {
    await s?.close();
    await admin?.query(`DROP USER IF EXISTS '${victim}'@'%'`);
    await admin?.end();
  });

  it('neither a narrow operator nor root can rotate root or an unlisted user through the rotator', async () => {
    const narrow = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['mine'], ttl: '10m' } })
    ).json().token as string;
    const hash = async (user: string) =>
      (
        (await admin.query('SELECT authentication_string AS h FROM mysql.user WHERE User = ?', [user])) as [
          Array<{ h: string }>,
          unknown,
        ]
      )[0].map((r) => r.h);
    for (const username of [victim, 'root']) {
      const before = await hash(username);
      await s.call({
        method: 'PUT',
        url: '/v1/secrets/data/kv/mine/m',
        payload: { data: { username, password: fakeSecret('pw') } },
      });
      for (const as of [narrow, s.rootToken]) {
        const configured = await s.call({
          method: 'PUT',
          url: '/v1/rotation/kv/mine/m',
          token: as,
          payload: { rotator: { type: 'database', engine: 'maria', username } },
        });
        expect(configured.statusCode, `${username} as ${as === narrow ? 'narrow' : 'root'}`).toBe(403);
        await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/mine/m', token: as });
      }
      expect(await hash(username), username).toEqual(before);
    }
  });
});

describe('delegated power: the webhook rotator', () => {
  let s: TestServer;
  let receiver: Server;
  let url: string;
  const received: string[] = [];
  let rotateOnly: string;
  let reader: string;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ack":true}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    s = await startTestServer('sqlite');
    await s.call({ method: 'PUT', url: '/v1/policies/rotate', payload: { policy: permit('rotate', 'kv/team/') } });
    await s.call({ method: 'PUT', url: '/v1/policies/read', payload: { policy: permit('read', 'kv/team/') } });
    const token = async (policies: string[]) =>
      (await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies, ttl: '10m' } })).json()
        .token as string;
    rotateOnly = await token(['rotate']);
    reader = await token(['rotate', 'read']);
  });
  afterAll(async () => {
    await s?.close();
    await new Promise((r) => receiver?.close(r));
  });

  it('an operator who cannot read a secret cannot configure a webhook rotator for it, nor make custos send it', async () => {
    const other = fakeSecret('other-field');
    await s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/team/api',
      payload: { data: { value: fakeSecret('v1'), other } },
    });
    const configured = await s.call({
      method: 'PUT',
      url: '/v1/rotation/kv/team/api',
      token: rotateOnly,
      payload: { rotator: { type: 'webhook', url } },
    });
    expect(configured.statusCode).toBe(403);
    received.length = 0;
    await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/team/api', token: rotateOnly });
    expect(received.join('')).not.toContain(other);
    expect(received).toEqual([]);
  });

  it('with read on the secret, the webhook rotator may be configured', async () => {
    const configured = await s.call({
      method: 'PUT',
      url: '/v1/rotation/kv/team/api',
      token: reader,
      payload: { rotator: { type: 'webhook', url } },
    });
    expect(configured.statusCode).toBe(200);
    expect(
      (await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/team/api', token: rotateOnly })).statusCode,
    ).toBe(200);
  });
});
