import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from '../test-server.js';

// Attack class: telling a honeytoken from a real secret.
//
// A honeytoken is worth something only while whoever finds it cannot tell it
// is a decoy. Every principal but an operator with `admin` on
// `sys/honeytokens` must see an ordinary secret through every route: the
// same shape of reads, metadata and listings, the same errors, the same
// answers from the honeytoken routes whatever they name, and a report route
// that answers alike whether a path is a decoy or not. (What an admin of
// the alerts sees once a decoy has tripped, and what the audit trail's
// readers can correlate, is in docs/security-model.md.)

type Call = Awaited<ReturnType<TestServer['call']>>;

const FIELDS = ['access_key_id', 'secret_access_key'];
/** Values and times differ from secret to secret by nature; everything else must not. */
const shape = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(shape);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]));
  }
  if (typeof value === 'string') return /^\d{4}-\d\d-\d\dT/.test(value) ? '<time>' : typeof value;
  return value;
};
/** Headers that must match between a decoy's answer and a real secret's (a rate-limit countdown moves with every call). */
const headers = (r: Call) => {
  const { date: _d, 'content-length': _l, 'x-request-id': _r, 'x-ratelimit-remaining': _c, ...rest } = r.headers;
  return rest;
};

describe('a honeytoken cannot be told from a real secret by a non-admin', () => {
  let s: TestServer;
  let reader: string;
  let honeyAdminPrefixOnly: string;
  let honeyAdminNoWrite: string;
  let task: string;
  const ok = async (r: Call) => {
    expect(r.statusCode, r.body).toBeLessThan(300);
    return r.statusCode === 204 ? undefined : r.json();
  };
  const operator = async (name: string, policy: string) => {
    await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy } }));
    return (
      (await ok(
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [name], ttl: '1h' } }),
      )) as { token: string }
    ).token;
  };

  beforeAll(async () => {
    // Quarantine off: touching a decoy revokes the toucher's tree (that is the trap — tested in
    // honeytokens.test.ts); here one task keeps asking, to compare every answer with a real secret's.
    s = await startTestServer('sqlite', { anomaly: { actions: { rules: { honeytoken: [] } } } });
    const finance =
      'permit(principal, action in [Custos::Action::"read", Custos::Action::"list", Custos::Action::"write"], resource in Custos::Path::"kv/finance/");';
    reader = await operator('finance-rw', finance);
    honeyAdminPrefixOnly = await operator(
      'honey-prefix',
      `${finance}\npermit(principal, action == Custos::Action::"admin", resource in Custos::Path::"sys/honeytokens/kv/");`,
    );
    honeyAdminNoWrite = await operator(
      'honey-nowrite',
      'permit(principal, action == Custos::Action::"admin", resource == Custos::Path::"sys/honeytokens");',
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/finance-admin',
        payload: { policy: `${finance}\npermit(principal, action == Custos::Action::"admin", resource);` },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/clerk', payload: { policies: ['finance-admin'], max_ttl: '15m' } }),
    );
    task = (
      (await ok(await s.call({ method: 'POST', url: '/v1/roles/clerk/tasks', payload: { ttl: '10m' } }))) as {
        token: string;
      }
    ).token;
    // The decoy, and a real secret of the same kind with the same fields, written by the same operator (root).
    await ok(
      await s.call({
        method: 'POST',
        url: '/v1/honeytokens',
        payload: { path: 'kv/finance/legacy-admin', kind: 'aws' },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/secrets/data/kv/finance/billing-admin',
        payload: { data: Object.fromEntries(FIELDS.map((f) => [f, fakeSecret(f)])) },
      }),
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('reads, metadata and listings are shaped alike, headers included', async () => {
    for (const token of [reader, task]) {
      for (const route of ['data', 'metadata']) {
        const decoy = await s.call({ method: 'GET', url: `/v1/secrets/${route}/kv/finance/legacy-admin`, token });
        const real = await s.call({ method: 'GET', url: `/v1/secrets/${route}/kv/finance/billing-admin`, token });
        expect(decoy.statusCode).toBe(200);
        expect(real.statusCode).toBe(200);
        expect(shape(decoy.json())).toEqual(shape(real.json()));
        expect(headers(decoy)).toEqual(headers(real));
      }
      const decoyMeta = (
        await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/finance/legacy-admin', token })
      ).json();
      const realMeta = (
        await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/finance/billing-admin', token })
      ).json();
      // The same writer, version numbers, settings — only the path and times differ.
      for (const key of [
        'created_by',
        'updated_by',
        'current_version',
        'oldest_version',
        'max_versions',
        'cas_required',
      ]) {
        expect(decoyMeta[key], key).toEqual(realMeta[key]);
      }
      const list = (await s.call({ method: 'GET', url: '/v1/secrets/list/kv/finance/', token })).json();
      expect(list.keys).toEqual(expect.arrayContaining(['legacy-admin', 'billing-admin']));
    }
  });

  it('error paths answer alike: missing version, refused write, refused delete', async () => {
    const pair = async (make: (path: string) => Promise<Call>) => {
      const decoy = await make('kv/finance/legacy-admin');
      const real = await make('kv/finance/billing-admin');
      expect(decoy.statusCode).toBe(real.statusCode);
      expect(decoy.body).toBe(real.body);
      expect(headers(decoy)).toEqual(headers(real));
      return decoy.statusCode;
    };
    expect(await pair((p) => s.call({ method: 'GET', url: `/v1/secrets/data/${p}?version=7`, token: reader }))).toBe(
      404,
    );
    expect(await pair((p) => s.call({ method: 'DELETE', url: `/v1/secrets/metadata/${p}`, token: reader }))).toBe(403);
    expect(
      await pair((p) =>
        s.call({
          method: 'PUT',
          url: `/v1/secrets/data/${p}`,
          token: reader,
          payload: { data: { x: 'y' }, options: { cas: 0 } },
        }),
      ),
    ).toBe(409);
  });

  it('the honeytoken routes refuse every non-admin alike, whatever path they name', async () => {
    const refusals: string[] = [];
    for (const token of [reader, task, honeyAdminPrefixOnly]) {
      const list = await s.call({ method: 'GET', url: '/v1/honeytokens', token });
      expect(list.statusCode).toBe(403);
      refusals.push(list.body);
      for (const path of ['kv/finance/legacy-admin', 'kv/finance/billing-admin', 'kv/finance/nothing-here']) {
        const created = await s.call({ method: 'POST', url: '/v1/honeytokens', token, payload: { path, kind: 'aws' } });
        const deleted = await s.call({ method: 'POST', url: '/v1/honeytokens/delete', token, payload: { path } });
        expect(created.statusCode).toBe(403);
        expect(deleted.statusCode).toBe(403);
        refusals.push(created.body, deleted.body);
      }
      // Refused before the body is read: a malformed body is the same refusal, not a validation error.
      const malformed = await s.call({ method: 'POST', url: '/v1/honeytokens/delete', token, payload: { nope: 1 } });
      refusals.push(malformed.body);
    }
    expect(new Set(refusals).size).toBe(1);
    // Nothing was created or removed by any of them.
    const listed = (await ok(await s.call({ method: 'GET', url: '/v1/honeytokens' }))) as {
      honeytokens: { path: string }[];
    };
    expect(listed.honeytokens.map((h) => h.path)).toEqual(['kv/finance/legacy-admin']);
    expect((await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/finance/nothing-here' })).statusCode).toBe(404);
  });

  it('admin on sys/honeytokens does not let one write a decoy where one may not write, nor remove one', async () => {
    const created = await s.call({
      method: 'POST',
      url: '/v1/honeytokens',
      token: honeyAdminNoWrite,
      payload: { path: 'kv/finance/planted', kind: 'generic' },
    });
    expect(created.statusCode).toBe(403);
    expect((await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/finance/planted' })).statusCode).toBe(404);
    const deleted = await s.call({
      method: 'POST',
      url: '/v1/honeytokens/delete',
      token: honeyAdminNoWrite,
      payload: { path: 'kv/finance/legacy-admin' },
    });
    expect(deleted.statusCode).toBe(403);
    // It may list (that is what admin on sys/honeytokens is for).
    expect((await s.call({ method: 'GET', url: '/v1/honeytokens', token: honeyAdminNoWrite })).statusCode).toBe(200);
  });

  it('the report route answers alike for a decoy, a real secret, a missing and an unreadable path', async () => {
    const answers: Call[] = [];
    for (const path of [
      'kv/finance/legacy-admin',
      'kv/finance/billing-admin',
      'kv/finance/missing',
      'kv/other/x',
      'not a path',
    ]) {
      answers.push(
        await s.call({
          method: 'POST',
          url: '/v1/scan/matches',
          token: reader,
          payload: { source: 'redact', matches: [{ path }] },
        }),
      );
    }
    for (const a of answers) {
      expect(a.statusCode).toBe(204);
      expect(a.body).toBe('');
      expect(headers(a)).toEqual(headers(answers[0]!));
    }
    // Bounded: at most 100 matches a request, refused beyond (nothing recorded).
    const flood = await s.call({
      method: 'POST',
      url: '/v1/scan/matches',
      token: reader,
      payload: { source: 'scan', matches: Array.from({ length: 101 }, () => ({ path: 'kv/finance/billing-admin' })) },
    });
    expect(flood.statusCode).toBe(400);
    // Without a token: refused like every authenticated route.
    expect(
      (await s.call({ method: 'POST', url: '/v1/scan/matches', token: null, payload: { source: 'scan', matches: [] } }))
        .statusCode,
    ).toBe(401);
  });

  it('the scanner fingerprint list shows the decoy as any secret the caller may read', async () => {
    const answer = (await ok(
      await s.call({ method: 'POST', url: '/v1/scan/fingerprints', token: reader, payload: {} }),
    )) as {
      fingerprints: { path: string; field: string; version: number; hmac: string }[];
    };
    const decoy = answer.fingerprints.filter((f) => f.path === 'kv/finance/legacy-admin');
    const real = answer.fingerprints.filter((f) => f.path === 'kv/finance/billing-admin');
    expect(shape(decoy)).toEqual(shape(real));
    expect(decoy.map((f) => f.field).sort()).toEqual(FIELDS);
  });

  it('neither the audit trail nor storage names the decoy path as one', async () => {
    const events = await auditEvents(s.storage);
    const creations = events.filter((e) => (e.request as { route?: string } | undefined)?.route === '/v1/honeytokens');
    expect(creations.length).toBeGreaterThan(0);
    for (const e of creations) expect(JSON.stringify(e)).not.toContain('legacy-admin');
    // The marker: a random key, a sealed value; the path appears in no key and in no value in clear.
    const markers = await s.storage.entries.scan('honeytoken', '');
    expect(markers).toHaveLength(1);
    expect(markers[0]!.key).toMatch(/^ht_[0-9a-f]{32}$/);
    expect(Buffer.from(markers[0]!.value).toString('latin1')).not.toContain('legacy-admin');
  });
});
