import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, postgresUrl, type TestDatabase } from '../../../test-support/postgres.js';
import { startCliServer } from './cli-harness.js';

const fakeValue = () => `fake${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

async function roleExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    return ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount ?? 0) > 0;
  } finally {
    await client.end();
  }
}

describe.skipIf(!hasPostgres())('custos engine, creds, lease and secret rotate', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  let target: TestDatabase;
  const ok = async (args: string[], options: { token?: string; stdin?: string } = {}) => {
    const run = await h.cli(args, options);
    if (run.code !== 0) throw new Error(`custos ${args[0]} ${args[1] ?? ''} failed: ${run.stderr}`);
    return run.stdout;
  };

  beforeAll(async () => {
    target = await createTestDatabase();
    h = await startCliServer();
    const policy = join(h.dir, 'db.cedar');
    writeFileSync(
      policy,
      'permit(principal, action in [Custos::Action::"issue", Custos::Action::"read"], resource in Custos::Path::"pg-main/");\n' +
        'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");\n',
    );
    await ok(['policy', 'write', 'db', policy]);
    await ok(['role', 'write', 'db-agent', '--policy', 'db', '--max-ttl', '30m', '--auth', 'bootstrap']);
  });
  afterAll(async () => {
    await h?.close();
    await target?.drop();
  });

  it('adds an engine (URL from stdin, never shown), writes roles, refuses invalid SQL', async () => {
    expect(await ok(['engine', 'add', 'pg-main', '--type', 'postgres', '--url', '-'], { stdin: target.url })).toContain(
      'connected and stored',
    );
    const shown = await ok(['engine', 'read', 'pg-main', '--json']);
    expect(shown).not.toContain(target.url);
    expect(JSON.parse(shown)).toMatchObject({ name: 'pg-main', type: 'postgres' });
    await ok(['engine', 'role', 'write', 'pg-main/reader', '--default-ttl', '5m', '--max-ttl', '1h']);
    expect(await ok(['engine', 'role', 'read', 'pg-main/reader'])).toContain('(built-in)');
    const bad = await h.cli([
      'engine',
      'role',
      'write',
      'pg-main/bad',
      '--creation-sql',
      `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
      '--creation-sql',
      'GRANT NONSENSE TO "{{name}}"',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^custos: CUSTOS_ERR_VALIDATION /);
    expect(await ok(['engine', 'role', 'list', 'pg-main'])).toBe('reader\n');
  });

  it('engine add --tls-ca sends the file’s PEM inline (the server reads no path); a URL parameter the driver would take is refused', async () => {
    const notPem = join(h.dir, 'not-a-ca.pem');
    writeFileSync(notPem, 'this is not a certificate\n');
    const bad = await h.cli(['engine', 'add', 'pg-tls', '--type', 'postgres', '--url', '-', '--tls-ca', notPem], {
      stdin: target.url,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^custos: CUSTOS_ERR_VALIDATION .*tls_ca/);
    const missing = await h.cli(
      ['engine', 'add', 'pg-tls', '--type', 'postgres', '--url', '-', '--tls-ca', join(h.dir, 'nope.pem')],
      { stdin: target.url },
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^custos: CUSTOS_ERR_LOCAL /);
    const withParam = await h.cli(['engine', 'add', 'pg-opt', '--type', 'postgres', '--url', '-'], {
      stdin: `${target.url}?sslrootcert=/nonexistent/custos-test/ca.pem`,
    });
    expect(withParam.code).toBe(1);
    expect(withParam.stderr).toMatch(/^custos: CUSTOS_ERR_ENGINE_URL_REFUSED .*"sslrootcert"/);
    expect(await ok(['engine', 'list'])).not.toMatch(/pg-tls|pg-opt/);
  });

  it('a task gets credentials with `custos creds`, lists its lease, and loses the user when it ends', async () => {
    const task = JSON.parse(await ok(['task', 'start', '--role', 'db-agent', '--ttl', '10m', '--json'])) as {
      token: string;
      task_id: string;
    };
    const issued = JSON.parse(await ok(['creds', 'pg-main/reader', '--json'], { token: task.token })) as {
      username: string;
      password: string;
      lease_id: string;
    };
    expect(await roleExists(issued.username)).toBe(true);
    const env = await ok(['creds', 'pg-main/reader', '--format', 'env', '--ttl', '2m'], { token: task.token });
    expect(env).toMatch(/^DB_USERNAME=custos_reader_\w+\nDB_PASSWORD=\S+\nCUSTOS_LEASE_ID=lea_\S+\n$/);
    const list = await ok(['lease', 'list'], { token: task.token });
    expect(list).toContain(issued.lease_id);
    expect(list).not.toContain(issued.password);
    expect(await ok(['lease', 'renew', issued.lease_id, '--increment', '20m'], { token: task.token })).toContain(
      'now expires',
    );
    await ok(['task', 'end', task.task_id]);
    expect(await roleExists(issued.username)).toBe(false);
    expect(await ok(['lease', 'show', issued.lease_id])).toMatch(/state\s+revoked/);
    expect(await ok(['lease', 'list', '--state', 'active'])).toBe('no leases\n');
  });

  it('rotates a secret now and sets a schedule', async () => {
    await ok(['secret', 'put', 'kv/app/token', 'value=fake-initial-value']);
    expect(await ok(['secret', 'rotate', 'kv/app/token'])).toContain('version 2 is current (previous: 1)');
    expect(await ok(['secret', 'get', 'kv/app/token', '--field', 'value'])).not.toBe('fake-initial-value');
    const policy = JSON.parse(
      await ok(['secret', 'rotate', 'kv/app/token', '--every', '1h', '--grace', '5m', '--json']),
    );
    expect(policy).toMatchObject({ every_ms: 3_600_000, grace_ms: 300_000, rotator: { type: 'random' } });
  });

  it('a database rotator needs a user the engine lists; the engine’s admin is never one', async () => {
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    const user = `app_static_${Date.now().toString(36)}`;
    await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD '${fakeValue()}'`);
    try {
      await ok(['secret', 'put', 'kv/app/static', `username=${user}`, `password=${fakeValue()}`]);
      const args = ['secret', 'rotate', 'kv/app/static', '--rotator', 'database', '--engine', 'pg-main'];
      const unlisted = await h.cli([...args, '--username', user]);
      expect(unlisted.code).toBe(1);
      expect(unlisted.stderr).toMatch(/^custos: CUSTOS_ERR_USER_NOT_ROTATABLE /);
      expect(await ok(['engine', 'rotatable-users', 'pg-main', '--users', user])).toContain(user);
      expect(await ok(['engine', 'read', 'pg-main'])).toMatch(new RegExp(`rotatable users\\s+${user}`));
      expect(await ok([...args, '--username', user, '--now'])).toContain('version 2 is current');
      // The engine's URL names `postgres` (the run's superuser): it is never a rotator target, nor listable.
      const adminUser = decodeURIComponent(new URL(target.url).username);
      const listed = await h.cli(['engine', 'rotatable-users', 'pg-main', '--users', `${user},${adminUser}`]);
      expect(listed.stderr).toMatch(/^custos: CUSTOS_ERR_VALIDATION .*rotate-root/);
      const rotatingAdmin = await h.cli([...args, '--username', adminUser]);
      expect(rotatingAdmin.stderr).toMatch(/^custos: CUSTOS_ERR_USER_NOT_ROTATABLE /);
      // Replacing the engine's connection keeps its list.
      await ok(['engine', 'add', 'pg-main', '--type', 'postgres', '--url', '-'], { stdin: target.url });
      expect(JSON.parse(await ok(['engine', 'read', 'pg-main', '--json'])).rotatable_users).toEqual([user]);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${user}`);
      await admin.end();
    }
  });

  it('rotates the engine’s admin password', async () => {
    // A dedicated admin, so the shared superuser of the test run is never changed.
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    const user = `custos_admin_${Date.now().toString(36)}`;
    const password = `pw${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    await admin.query(`CREATE ROLE ${user} LOGIN CREATEROLE PASSWORD '${password}'`);
    await admin.query(`GRANT ALL ON SCHEMA public TO ${user}`);
    try {
      const url = new URL(target.url);
      url.username = user;
      url.password = password;
      await ok(['engine', 'add', 'pg-admin', '--type', 'postgres', '--url', '-'], { stdin: url.toString() });
      const before = (await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user])).rows[0];
      expect(await ok(['engine', 'rotate-root', 'pg-admin'])).toContain('Rotated the admin password of pg-admin');
      const after = (await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user])).rows[0];
      expect(after.rolpassword).not.toBe(before.rolpassword);
      // custos still works with the new password it alone knows.
      await ok(['engine', 'role', 'write', 'pg-admin/reader']);
      expect(JSON.parse(await ok(['engine', 'read', 'pg-admin', '--json'])).root_rotated_time).toBeTruthy();
      await ok(['engine', 'delete', 'pg-admin']);
    } finally {
      await admin.query(`DROP OWNED BY ${user}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${user}`).catch(() => undefined);
      await admin.end();
    }
  });
});
