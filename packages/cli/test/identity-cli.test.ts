import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

const fake = (label: string) => `fake-${label}-${Math.random().toString(36).slice(2, 12)}`;
const mode = (file: string) => statSync(file).mode & 0o777;

describe('custos CLI: roles, logins, tasks, delegation, JWT and mTLS against a real server', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const ok = async (args: string[], options?: Parameters<typeof h.cli>[1]) => {
    const run = await h.cli(args, options);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    return run.stdout;
  };
  const login = async () => {
    const bootstrap = (await ok(['bootstrap', 'create', '--role', 'enricher'])).trim();
    return JSON.parse(await ok(['login', '--bootstrap', bootstrap, '--ttl', '10m', '--json'], { token: '' })) as {
      token: string;
      task_id: string;
      accessor: string;
    };
  };

  beforeAll(async () => {
    h = await startCliServer({ tlsListen: '127.0.0.1:0' });
    const policy = join(h.dir, 'team.cedar');
    writeFileSync(
      policy,
      'permit(principal, action in [Custos::Action::"read", Custos::Action::"list"], resource in Custos::Path::"kv/team/");\n' +
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n',
    );
    await ok(['policy', 'write', 'team-read', policy]);
    for (const path of ['kv/team/a/x', 'kv/team/b/y']) await ok(['secret', 'put', path, `k=${fake('v')}`]);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('role write/read/list/delete with every option', async () => {
    const written = await ok([
      'role',
      'write',
      'enricher',
      '--policy',
      'team-read',
      '--max-ttl',
      '15m',
      '--default-ttl',
      '5m',
      '--auth',
      'bootstrap',
      '--max-depth',
      '2',
      '--grantable-labels',
      'run',
    ]);
    expect(written).toBe('Wrote role enricher\n');
    const role = JSON.parse(await ok(['role', 'read', 'enricher', '--json']));
    expect(role).toMatchObject({
      name: 'enricher',
      policies: ['team-read'],
      max_ttl: '900s',
      default_ttl: '300s',
      auth: ['bootstrap'],
      max_depth: 2,
      grantable_labels: ['run'],
    });
    await ok([
      ...['role', 'write', 'scratch', '--policy', 'team-read', '--max-ttl', '1h', '--auth', 'jwt,cert'],
      ...['--bound-claims', 'repository=acme/*', 'repository=beta/*', '--bound-cidrs', '10.0.0.0/8'],
      ...['--require-dpop', '--jwt-method', 'github'],
    ]);
    expect(JSON.parse(await ok(['role', 'read', 'scratch', '--json']))).toMatchObject({
      auth: ['jwt', 'cert'],
      bound_claims: { repository: ['acme/*', 'beta/*'] },
      bound_cidrs: ['10.0.0.0/8'],
      require_dpop: true,
      jwt_methods: ['github'],
    });
    expect(await ok(['role', 'read', 'scratch'])).toMatch(/bound_claims\s+repository=acme\/\*\|beta\/\*/);
    // an update keeps what it does not name
    await ok(['role', 'write', 'scratch', '--policy', 'team-read', '--max-ttl', '30m', '--no-require-dpop']);
    expect(JSON.parse(await ok(['role', 'read', 'scratch', '--json']))).toMatchObject({
      max_ttl: '1800s',
      auth: ['jwt', 'cert'],
      require_dpop: false,
      jwt_methods: ['github'],
    });
    expect((await ok(['role', 'list'])).split('\n')).toEqual(expect.arrayContaining(['enricher', 'scratch']));
    expect(await ok(['role', 'delete', 'scratch'])).toBe('Deleted role scratch\n');
    const bad = await h.cli(['role', 'write', 'x', '--policy', 'p', '--max-ttl', '1m', '--auth', 'password']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^custos: CUSTOS_ERR_USAGE /);
  });

  it('bootstrap create prints the token alone; login prints the task token alone; reuse is refused', async () => {
    const bootstrap = await ok(['bootstrap', 'create', '--role', 'enricher', '--ttl', '2m']);
    expect(bootstrap).toMatch(/^cbt_[A-Za-z0-9_-]+\n$/);
    const token = await ok(['login', '--bootstrap', bootstrap.trim()], { token: '' });
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    expect(await ok(['secret', 'get', 'kv/team/a/x', '--field', 'k'], { token: token.trim() })).toMatch(/^fake-v-/);

    const reuse = await h.cli(['login', '--bootstrap', bootstrap.trim()], { token: '' });
    expect(reuse.code).toBe(1);
    expect(reuse.stdout).toBe('');
    expect(reuse.stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED /);
    expect(reuse.stderr).not.toContain(bootstrap.trim());

    const json = JSON.parse(await ok(['bootstrap', 'create', '--role', 'enricher', '--json']));
    expect(json).toMatchObject({ token: expect.stringMatching(/^cbt_/), accessor: expect.stringMatching(/^bac_/) });
    // from stdin, kept out of the process list; with scope and the agent's own labels
    const viaStdin = JSON.parse(
      await ok(['login', '--bootstrap', '-', '--scope', 'read:kv/team/a/*', '--label', 'agent.kind=reader', '--json'], {
        token: '',
        stdin: `${json.token}\n`,
      }),
    );
    expect(viaStdin).toMatchObject({
      task_id: expect.stringMatching(/^tsk_/),
      accessor: expect.stringMatching(/^tac_/),
      expire_time: expect.any(String),
      scope: 'read:kv/team/a/*',
      task: { labels: { 'agent.kind': 'reader' } },
    });
    // An operator label is not the agent's to choose: refused before the token is spent.
    const spare = (await ok(['bootstrap', 'create', '--role', 'enricher'])).trim();
    const chosen = await h.cli(['login', '--bootstrap', spare, '--label', 'team=search'], { token: '' });
    expect(chosen.code).toBe(1);
    expect(chosen.stderr).toMatch(/^custos: CUSTOS_ERR_LABEL_NOT_ALLOWED /);
    expect(await ok(['login', '--bootstrap', spare], { token: '' })).toMatch(/^[A-Za-z0-9_-]+\./);
  });

  it('operator labels: role write --label and bootstrap create --label reach the task; a role label never changes', async () => {
    await ok([
      ...['role', 'write', 'labelled', '--policy', 'team-read', '--max-ttl', '10m', '--label', 'team=search'],
      ...['--grantable-labels', 'env,tier'],
    ]);
    expect(await ok(['role', 'read', 'labelled'])).toMatch(/labels\s+team=search/);
    expect(await ok(['role', 'read', 'labelled'])).toMatch(/grantable_labels\s+env, tier/);
    const bootstrap = (await ok(['bootstrap', 'create', '--role', 'labelled', '--label', 'env=prod'])).trim();
    const task = JSON.parse(await ok(['login', '--bootstrap', bootstrap, '--json'], { token: '' }));
    expect(task.task.labels).toEqual({ team: 'search', env: 'prod' });
    const clash = await h.cli(['bootstrap', 'create', '--role', 'labelled', '--label', 'team=ads']);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/^custos: CUSTOS_ERR_LABEL_NOT_ALLOWED /);
    // A key the role does not list as grantable is not the issuer's to set.
    const ungranted = await h.cli(['bootstrap', 'create', '--role', 'labelled', '--label', 'sandbox=false']);
    expect(ungranted.code).toBe(1);
    expect(ungranted.stderr).toMatch(/^custos: CUSTOS_ERR_LABEL_NOT_ALLOWED .*grantable_labels/);
    // An empty list clears it: nothing may be granted then.
    await ok(['role', 'write', 'labelled', '--policy', 'team-read', '--max-ttl', '10m', '--grantable-labels', '']);
    expect(await ok(['role', 'read', 'labelled'])).toMatch(/grantable_labels\s+-/);
    const none = await h.cli(['bootstrap', 'create', '--role', 'labelled', '--label', 'env=prod']);
    expect(none.stderr).toMatch(/^custos: CUSTOS_ERR_LABEL_NOT_ALLOWED /);
    await ok(['role', 'delete', 'labelled']);
  });

  it('login usage errors exit 2 and say so', async () => {
    for (const args of [
      ['login'],
      ['login', '--bootstrap', 'x', '--jwt', 'y'],
      ['login', '--jwt', 'file.jwt'],
      ['login', '--cert', 'c.pem'],
      ['login', '--bootstrap', 'x', '--label', 'novalue'],
    ]) {
      const run = await h.cli(args, { token: '' });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/^custos: CUSTOS_ERR_USAGE /);
    }
  });

  it('login --save writes ~/.custos-token with mode 0600', async () => {
    const home = join(h.dir, 'home');
    mkdirSync(home);
    const bootstrap = (await ok(['bootstrap', 'create', '--role', 'enricher'])).trim();
    const token = (await ok(['login', '--bootstrap', bootstrap, '--save'], { token: '', env: { HOME: home } })).trim();
    const file = join(home, '.custos-token');
    expect(readFileSync(file, 'utf8')).toBe(`${token}\n`);
    expect(mode(file)).toBe(0o600);
  });

  it('task delegate: a narrower child works, a wider one is refused; tree shows three levels; revoking the root kills them', async () => {
    const root = await login();
    const child = (
      await ok(['task', 'delegate', '--scope', 'read:kv/team/a/* delegate:sys/tasks/*', '--ttl', '5m'], {
        token: root.token,
      })
    ).trim();
    expect(child.split('.')).toHaveLength(3);
    expect((await h.cli(['secret', 'get', 'kv/team/a/x'], { token: child })).code).toBe(0);
    const outside = await h.cli(['secret', 'get', 'kv/team/b/y'], { token: child });
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain('CUSTOS_ERR_PERMISSION_DENIED');

    const wider = await h.cli(['task', 'delegate', '--scope', 'read:kv/team/*'], { token: child });
    expect(wider).toMatchObject({ code: 1, stdout: '' });
    expect(wider.stderr).toMatch(/^custos: CUSTOS_ERR_SCOPE_EXCEEDS_PARENT .+\n$/);
    const longer = await h.cli(['task', 'delegate', '--ttl', '1h'], { token: child });
    expect(longer.stderr).toMatch(/^custos: CUSTOS_ERR_TTL_EXCEEDS_PARENT /);

    const grandchild = JSON.parse(
      await ok(['task', 'delegate', '--scope', 'read:kv/team/a/x delegate:sys/tasks/*', '--ttl', '1m', '--json'], {
        token: child,
      }),
    );
    expect(grandchild).toMatchObject({
      scope: 'read:kv/team/a/x delegate:sys/tasks/*',
      task_id: expect.stringMatching(/^tsk_/),
    });
    const tooDeep = await h.cli(['task', 'delegate'], { token: grandchild.access_token });
    expect(tooDeep.stderr).toMatch(/^custos: CUSTOS_ERR_DELEGATION_DEPTH /);

    const tree = (await ok(['task', 'tree', root.task_id])).trimEnd().split('\n');
    expect(tree).toHaveLength(3);
    expect(tree[0]).toMatch(new RegExp(`^${root.task_id}  enricher  depth=0  active  scope=`));
    expect(tree[1]).toMatch(
      /^└─ tsk_\S+ {2}enricher {2}depth=1 {2}active {2}scope=read:kv\/team\/a\/\* delegate:sys\/tasks\/\* {2}expires=/,
    );
    expect(tree[2]).toMatch(
      new RegExp(
        `^   └─ ${grandchild.task_id}  enricher  depth=2  active  scope=read:kv/team/a/x delegate:sys/tasks/\\*  expires=`,
      ),
    );
    const treeJson = JSON.parse(await ok(['task', 'tree', root.task_id, '--json']));
    expect(treeJson.tasks.map((t: { depth: number }) => t.depth)).toEqual([0, 1, 2]);

    const introspected = JSON.parse(await ok(['token', 'introspect', child, '--json']));
    expect(introspected).toMatchObject({ active: true, depth: 1, parent_task_id: root.task_id });

    expect(await ok(['task', 'revoke', root.task_id])).toMatch(
      /^Revoked task tsk_\S+ and its subtree \(state revoked\)/,
    );
    for (const token of [root.token, child, grandchild.access_token]) {
      const refused = await h.cli(['secret', 'get', 'kv/team/a/x'], { token });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED /);
    }
    expect(await ok(['token', 'introspect', child])).toBe('active  false\n');
    expect(JSON.parse(await ok(['token', 'introspect', '-', '--json'], { stdin: child }))).toEqual({ active: false });
    const after = (await ok(['task', 'tree', root.task_id])).trimEnd().split('\n');
    expect(after.every((line) => line.includes('  revoked  '))).toBe(true);
    const afterRevoke = await h.cli(['task', 'delegate'], { token: child });
    expect(afterRevoke.code).toBe(1);
    expect(afterRevoke.stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED /);
    // A caller whose own token is revoked is refused (401 invalid_token), not told about the token.
    const deadCaller = await h.cli(['token', 'introspect', child], { token: root.token });
    expect(deadCaller).toMatchObject({ code: 1, stdout: '' });
    expect(deadCaller.stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED /);
  });

  it('task start/show/list/end and the accessor commands: lookup, extend, revoke', async () => {
    const started = JSON.parse(
      await ok(['task', 'start', '--role', 'enricher', '--ttl', '5m', '--label', 'run=42', '--json']),
    );
    expect(started).toMatchObject({ token: expect.any(String), task_id: expect.stringMatching(/^tsk_/) });
    expect(await ok(['task', 'start', '--role', 'enricher', '--ttl', '1m'])).toMatch(/^\S+\.\S+\.\S+\n$/);
    const shown = await ok(['task', 'show', started.task_id]);
    expect(shown).toMatch(/state\s+active/);
    expect(shown).toMatch(/labels\s+run=42/);
    expect(shown).toMatch(/via\s+operator/);
    const looked = JSON.parse(await ok(['task', 'lookup', '--accessor', started.accessor, '--json']));
    expect(looked).toMatchObject({ id: started.task_id, state: 'active' });
    expect(JSON.stringify(looked)).not.toContain(started.token);
    const tooLong = await h.cli(['task', 'extend', '--accessor', started.accessor, '--ttl', '1h']);
    expect(tooLong.stderr).toMatch(/^custos: CUSTOS_ERR_INVALID_TTL /);
    expect(await ok(['task', 'extend', '--accessor', started.accessor, '--ttl', '10m'])).toMatch(
      /^Extended task tsk_\S+ until \d{4}-/,
    );
    const listed = await ok(['task', 'list', '--role', 'enricher', '--state', 'active']);
    expect(listed).toContain(started.task_id);
    // A page at a time: --limit stops early and hands back where to go on.
    const all = JSON.parse(await ok(['task', 'list', '--json'])).tasks.map((t: { id: string }) => t.id);
    expect(all.length).toBeGreaterThanOrEqual(3);
    const head = JSON.parse(await ok(['task', 'list', '--limit', '2', '--json']));
    expect(head.tasks.map((t: { id: string }) => t.id)).toEqual(all.slice(0, 2));
    expect(head.next_cursor).toEqual(expect.any(String));
    const rest = JSON.parse(await ok(['task', 'list', '--cursor', head.next_cursor, '--json']));
    expect(rest.tasks.map((t: { id: string }) => t.id)).toEqual(all.slice(2));
    expect(rest.next_cursor).toBeUndefined();
    expect((await h.cli(['task', 'list', '--limit', '0'])).code).toBe(2);
    expect(await ok(['task', 'revoke', '--accessor', started.accessor])).toContain(started.task_id);
    expect(await ok(['task', 'list', '--state', 'revoked'])).toContain(started.task_id);
    expect(await ok(['task', 'list', '--state', 'active'])).not.toContain(started.task_id);

    const other = await login();
    expect(await ok(['task', 'end', other.task_id], { token: other.token })).toMatch(/state ended/);
    expect((await h.cli(['task', 'show', 'not-an-id'])).code).toBe(2);
    expect((await h.cli(['task', 'revoke'])).code).toBe(2);
  });

  it('auth jwt add with a JWKS file, then login --jwt with a JWT signed now', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwks = join(h.dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));
    const issuer = 'https://oidc.ci.example.test';
    expect(
      await ok([
        ...['auth', 'jwt', 'add', 'ci', '--issuer', issuer, '--jwks-file', jwks, '--audience', 'custos'],
        ...['--claim-label', 'repository=repo'],
      ]),
    ).toBe('Wrote JWT method ci\n');
    expect(await ok(['auth', 'jwt', 'list'])).toBe('ci\n');
    expect(await ok(['auth', 'jwt', 'read', 'ci'])).toMatch(/jwks\s+1 key\(s\) configured/);
    expect(await ok(['auth', 'jwt', 'read', 'ci'])).toMatch(/claim_labels\s+repository→repo/);
    await ok([
      ...['role', 'write', 'ci-agent', '--policy', 'team-read', '--max-ttl', '10m', '--auth', 'jwt'],
      ...['--bound-claims', 'repository=acme/*', '--jwt-method', 'ci', '--grantable-labels', 'repo'],
    ]);
    const sign = (repository: string) =>
      new SignJWT({ repository })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience('custos')
        .setSubject('repo:acme/payments')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    const jwtFile = join(h.dir, 'workload.jwt');
    writeFileSync(jwtFile, `${await sign('acme/payments')}\n`);
    const issued = JSON.parse(
      await ok(['login', '--jwt', jwtFile, '--role', 'ci-agent', '--method', 'ci', '--json'], { token: '' }),
    );
    expect(issued.task).toMatchObject({
      role: 'ci-agent',
      sub: `jwt:${issuer}#repo:acme/payments`,
      // The mapped claim, as the issuer signed it: an operator label.
      labels: { repo: 'acme/payments' },
    });
    expect((await h.cli(['secret', 'get', 'kv/team/a/x'], { token: issued.token })).code).toBe(0);
    const fromStdin = await ok(['login', '--jwt', '-', '--role', 'ci-agent'], {
      token: '',
      stdin: await sign('acme/other'),
    });
    expect(fromStdin.split('.')).toHaveLength(3);
    const unbound = await h.cli(['login', '--jwt', '-', '--role', 'ci-agent'], {
      token: '',
      stdin: await sign('evil/repo'),
    });
    expect(unbound.code).toBe(1);
    expect(unbound.stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED /);
    const both = await h.cli(['auth', 'jwt', 'add', 'x', '--issuer', issuer, '--audience', 'a']);
    expect(both.code).toBe(2);
    const badMapping = await h.cli([
      ...['auth', 'jwt', 'add', 'x', '--issuer', issuer, '--jwks-file', jwks, '--audience', 'a'],
      ...['--claim-label', 'repository'],
    ]);
    expect(badMapping.code).toBe(2);
    expect(await ok(['auth', 'jwt', 'delete', 'ci'])).toBe('Deleted JWT method ci\n');
    expect(await ok(['auth', 'jwt', 'list'])).toBe('\n');
  });

  it('cert issue writes the key 0600, login --cert over the mTLS listener works, cert revoke stops it', async () => {
    expect(h.server.tlsAddress).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await ok(['role', 'write', 'gpu-node', '--policy', 'team-read', '--max-ttl', '10m', '--auth', 'cert']);
    const [cert, key, ca] = ['agent.crt', 'agent.key', 'ca.crt'].map((f) => join(h.dir, f)) as [string, string, string];
    writeFileSync(key, 'old contents, world-readable', { mode: 0o644 });
    const issued = JSON.parse(
      await ok(
        ['cert', 'issue', '--role', 'gpu-node', '--ttl', '1h', '--cert-out', cert, '--key-out', key].concat([
          '--ca-out',
          ca,
          '--json',
        ]),
      ),
    );
    expect(issued).toMatchObject({ spiffe_id: expect.stringMatching(/^spiffe:\/\/[^/]+\/role\/gpu-node\//) });
    expect(issued.key_pem).toBeUndefined();
    expect(mode(key)).toBe(0o600);
    expect(mode(cert)).toBe(0o644);
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(ca, 'utf8')).toBe(readFileSync(join(h.dir, 'ca.pem'), 'utf8'));

    const tlsEnv = { CUSTOS_TLS_ADDR: h.server.tlsAddress! };
    const viaCa = await ok(['login', '--cert', cert, '--key', key, '--ca', ca, '--role', 'gpu-node', '--json'], {
      token: '',
      env: tlsEnv,
    });
    expect(JSON.parse(viaCa).task).toMatchObject({ role: 'gpu-node', sub: issued.spiffe_id, via: 'cert' });
    const viaEnv = await ok(['login', '--cert', cert, '--key', key, '--ttl', '2m'], {
      token: '',
      env: { ...tlsEnv, CUSTOS_CACERT: join(h.dir, 'ca.pem') },
    });
    expect((await h.cli(['secret', 'get', 'kv/team/a/x'], { token: viaEnv.trim() })).code).toBe(0);
    // CUSTOS_ADDR itself may be the https listener
    await ok(['login', '--cert', cert, '--key', key, '--ca', ca], {
      token: '',
      env: { CUSTOS_ADDR: h.server.tlsAddress! },
    });

    const wrongRole = await h.cli(['login', '--cert', cert, '--key', key, '--ca', ca, '--role', 'enricher'], {
      env: tlsEnv,
    });
    expect(wrongRole.code).toBe(2);
    expect(wrongRole.stderr).toContain('for role gpu-node, not enricher');
    const noAddr = await h.cli(['login', '--cert', cert, '--key', key]);
    expect(noAddr.code).toBe(2);
    expect(noAddr.stderr).toContain('CUSTOS_TLS_ADDR');
    const untrusted = await h.cli(['login', '--cert', cert, '--key', key], { env: tlsEnv });
    expect(untrusted.code).toBe(2);
    expect(untrusted.stderr).toMatch(/^custos: CUSTOS_ERR_UNREACHABLE .*trust its CA with --ca or CUSTOS_CACERT\n$/);

    expect(await ok(['cert', 'revoke', issued.serial])).toBe(`Revoked certificate ${issued.serial}\n`);
    const revoked = await h.cli(['login', '--cert', cert, '--key', key, '--ca', ca], { token: '', env: tlsEnv });
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED /);

    const pems = JSON.parse(await ok(['cert', 'issue', '--role', 'gpu-node']));
    expect(pems).toMatchObject({
      cert_pem: expect.stringMatching(/^-----BEGIN CERTIFICATE-----/),
      key_pem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/),
      ca_pem: expect.stringMatching(/^-----BEGIN CERTIFICATE-----/),
    });
    expect((await h.cli(['cert', 'issue', '--role', 'gpu-node', '--cert-out', cert])).code).toBe(2);
    const notAllowed = await h.cli(['cert', 'issue', '--role', 'enricher']);
    expect(notAllowed.stderr).toMatch(/^custos: CUSTOS_ERR_AUTH_METHOD_NOT_ALLOWED /);
  });
});
