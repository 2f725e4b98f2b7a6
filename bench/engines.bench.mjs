// Dynamic database credentials benchmark (issue 4), on the BUILT engines
// (`@custos/engines` → packages/engines/dist; bench/run.js runs `tsc -b` first):
// 1. PostgreSQL: create a credential + first login (new connection, one
//    SELECT) + revoke, p50/p99 over ITERATIONS, each phase apart;
// 2. PostgreSQL: a bare `CREATE ROLE … LOGIN PASSWORD … VALID UNTIL` for
//    comparison (what the engine adds: transaction, grants, checks);
// 3. PostgreSQL: revoking MASS users (created first, untimed), all at once
//    through the engine's small pool;
// 4. MariaDB (when reachable): create + first login + revoke, p50/p99.
// Everything runs in a fresh, uniquely named database that is dropped after.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { MysqlEngine, PostgresEngine } from '@custos/engines';
import mysql from 'mysql2/promise';
import pg from 'pg';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 100);
const MASS = Number(process.env.BENCH_MASS_USERS ?? 1000);
const POOL = 4;
const PG_URL = process.env.CUSTOS_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MY = { host: '127.0.0.1', port: 3306, user: 'root' };

const role = {
  name: 'readonly',
  creationStatements: [],
  revocationStatements: [],
  defaultTtlMs: 60_000,
  maxTtlMs: 60_000,
};
const fmt = (n, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const row = (label, xs) => `| ${label} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 99))} |`;
const withUser = (url, user, password) => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
};
const expiresAt = () => new Date(Date.now() + 10 * 60_000);

// --- PostgreSQL ------------------------------------------------------------
const dbName = `custos_bench_${randomBytes(4).toString('hex')}`;
const root = new pg.Client({ connectionString: PG_URL });
await root.connect();
await root.query(`CREATE DATABASE ${dbName}`);
const dbUrl = new URL(PG_URL);
dbUrl.pathname = `/${dbName}`;
const admin = new pg.Client({ connectionString: dbUrl.toString() });
await admin.connect();
await admin.query('CREATE TABLE items (id int primary key); INSERT INTO items VALUES (1)');
const engine = new PostgresEngine({ url: dbUrl.toString(), poolSize: POOL });
const version = (await admin.query('SHOW server_version')).rows[0].server_version;

const out = [];
try {
  const create = [];
  const login = [];
  const revoke = [];
  const total = [];
  for (let i = 0; i < ITERATIONS + 5; i++) {
    const t0 = performance.now();
    const cred = await engine.createCredential(role, { expiresAt: expiresAt(), usernamePrefix: 'bench' });
    const t1 = performance.now();
    const c = new pg.Client({ connectionString: withUser(dbUrl.toString(), cred.username, cred.password) });
    await c.connect();
    await c.query('SELECT id FROM items');
    const t2 = performance.now();
    await c.end();
    const t3 = performance.now();
    await engine.revokeCredential(role, cred.username);
    const t4 = performance.now();
    if (i < 5) continue; // warm-up
    create.push(t1 - t0);
    login.push(t2 - t1);
    revoke.push(t4 - t3);
    total.push(t4 - t0 - (t3 - t2));
  }

  const bare = [];
  const bareNames = [];
  for (let i = 0; i < ITERATIONS + 5; i++) {
    const name = `custos_bench_bare_${randomBytes(6).toString('hex')}`;
    const password = randomBytes(32).toString('base64url');
    const t0 = performance.now();
    await admin.query(`CREATE ROLE "${name}" LOGIN PASSWORD '${password}' VALID UNTIL '${expiresAt().toISOString()}'`);
    const t1 = performance.now();
    bareNames.push(name);
    if (i >= 5) bare.push(t1 - t0);
  }
  for (const n of bareNames) await admin.query(`DROP ROLE "${n}"`);

  // Mass revocation: create MASS users (untimed), then revoke them all at once.
  const names = [];
  for (let i = 0; i < MASS; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, MASS - i) }, () =>
        engine.createCredential(role, { expiresAt: expiresAt(), usernamePrefix: 'mass' }),
      ),
    );
    names.push(...batch.map((c) => c.username));
  }
  const m0 = performance.now();
  await Promise.all(names.map((n) => engine.revokeCredential(role, n)));
  const massMs = performance.now() - m0;
  const left = Number(
    (await admin.query("SELECT count(*) AS n FROM pg_roles WHERE rolname LIKE 'custos\\_mass\\_%'")).rows[0].n,
  );
  if (left !== 0) throw new Error(`${left} users left after mass revocation`);

  out.push(
    '## Dynamic database credentials (issue 4)',
    '',
    `PostgreSQL ${version} on 127.0.0.1 (loopback \`trust\` auth on this machine, so a login skips the SCRAM exchange a`,
    `password-checked server adds), engine pool of ${POOL} connections, the built-in read-only role (CREATE ROLE …`,
    `VALID UNTIL + GRANT USAGE + GRANT SELECT ON ALL TABLES, one transaction). ${ITERATIONS} sequential iterations after 5 warm-up.`,
    '',
    '| PostgreSQL, per credential (ms) | p50 | p99 |',
    '|---|---:|---:|',
    row('create + first login + revoke', total),
    row('createCredential', create),
    row('first login (new connection + SELECT)', login),
    row('revokeCredential (NOLOGIN, terminate, revoke, REASSIGN/DROP OWNED, DROP ROLE)', revoke),
    row('bare `CREATE ROLE … LOGIN PASSWORD … VALID UNTIL` (no transaction, no grants)', bare),
    '',
    `Revoking ${fmt(MASS, 0)} users (created first, untimed), all requested at once through the engine's pool of ${POOL}: ` +
      `**${fmt(massMs / 1000, 2)} s** (${fmt(MASS / (massMs / 1000), 0)} users/s); none left in \`pg_roles\` afterwards.`,
  );
} finally {
  await engine.close();
  await admin.end();
  await root.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await root
    .query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'custos\\_bench\\_%' OR rolname LIKE 'custos\\_mass\\_%'")
    .then(async ({ rows }) => {
      for (const r of rows) await root.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => undefined);
    });
  await root.end();
}

// --- MariaDB (optional) --------------------------------------------------
let myAdmin;
try {
  myAdmin = await mysql.createConnection(MY);
} catch {
  out.push('', 'MariaDB: not reachable at 127.0.0.1:3306, not measured.');
}
if (myAdmin) {
  const myDb = `custos_bench_${randomBytes(4).toString('hex')}`;
  const [[{ v }]] = await myAdmin.query('SELECT VERSION() AS v');
  await myAdmin.query(`CREATE DATABASE ${myDb}`);
  await myAdmin.query(`CREATE TABLE ${myDb}.items (id int primary key)`);
  const my = new MysqlEngine({ url: `mysql://root@127.0.0.1:3306/${myDb}`, poolSize: POOL });
  try {
    const total = [];
    const revoke = [];
    for (let i = 0; i < ITERATIONS + 5; i++) {
      const t0 = performance.now();
      const cred = await my.createCredential(role, { expiresAt: expiresAt(), usernamePrefix: 'bench' });
      const c = await mysql.createConnection({ ...MY, user: cred.username, password: cred.password, database: myDb });
      await c.query('SELECT id FROM items');
      const t1 = performance.now();
      await c.end();
      const t2 = performance.now();
      await my.revokeCredential(role, cred.username);
      const t3 = performance.now();
      if (i < 5) continue;
      total.push(t3 - t0 - (t2 - t1));
      revoke.push(t3 - t2);
    }
    out.push(
      '',
      `| MariaDB ${v.split('-')[0]}, per credential (ms) | p50 | p99 |`,
      '|---|---:|---:|',
      row('create + first login + revoke', total),
      row('revokeCredential (ACCOUNT LOCK, KILL, REVOKE, DROP USER)', revoke),
    );
  } finally {
    await my.close();
    await myAdmin.query(`DROP DATABASE IF EXISTS ${myDb}`);
    const [rows] = await myAdmin.query("SELECT User, Host FROM mysql.user WHERE User LIKE 'custos\\_bench\\_%'");
    for (const r of rows) await myAdmin.query('DROP USER IF EXISTS ?@?', [r.User, r.Host]);
    await myAdmin.end();
  }
}

console.log(out.join('\n'));
