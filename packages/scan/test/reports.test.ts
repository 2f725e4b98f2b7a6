import { createHmac, randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createBaseline,
  fetchVaultFingerprints,
  jsonReport,
  parseBaseline,
  parseKnownSecrets,
  sarifReport,
  textReport,
} from '../src/index.js';
import { fakeHfToken, fakeOpenAiKey } from './support/fake-keys.js';
import { onnxModel, zip } from './support/fixture-writers.js';
import { validateSarif } from './support/sarif-multitool.js';
import { FixtureDir } from './support/scan-dir.js';

const dir = new FixtureDir();
const elsewhere = new FixtureDir();
afterAll(() => {
  dir.cleanup();
  elsewhere.cleanup();
});

describe('reports', () => {
  const key = fakeOpenAiKey();
  const hf = fakeHfToken();
  dir.write('rep/app.env', `OPENAI_API_KEY=${key}\n`);
  dir.write('rep/model.onnx', onnxModel({ metadata: { hf_token: hf } }));
  dir.write('rep/broken.safetensors', Buffer.from([1, 2, 3]));

  it('text report masks values and prints one line per finding', async () => {
    const r = await dir.scan(['rep']);
    const text = textReport(r);
    expect(text).not.toContain(key);
    expect(text).not.toContain(hf);
    expect(text).toContain(`rep/app.env:1  openai-key  ${key.slice(0, 4)}…(${key.length})`);
    expect(text).toContain('rep/model.onnx › metadata_props[hf_token]  huggingface-token  hf_');
    expect(text).toContain('rep/broken.safetensors  SCAN_ERR_TRUNCATED');
    expect(textReport(r, { showSecrets: true })).toContain(key);
  });

  it('json report masks values', async () => {
    const r = await dir.scan(['rep']);
    const doc = JSON.parse(jsonReport(r));
    expect(JSON.stringify(doc)).not.toContain(key);
    expect(doc.findings).toHaveLength(2);
    expect(doc.errors[0]).toMatchObject({ kind: 'error', code: 'SCAN_ERR_TRUNCATED' });
  });

  it('SARIF 2.1.0 has the required structure and logical locations inside models', async () => {
    const r = await dir.scan(['rep']);
    const text = sarifReport(r);
    expect(text).not.toContain(key);
    const sarif = JSON.parse(text);
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.$schema).toMatch(/sarif-2\.1\.0/);
    const run = sarif.runs[0];
    expect(run.tool.driver.name).toBe('custos-scan');
    const ruleIds = run.tool.driver.rules.map((x: { id: string }) => x.id);
    expect(ruleIds).toEqual(['huggingface-token', 'openai-key']);
    for (const rule of run.tool.driver.rules) expect(rule.shortDescription.text.length).toBeGreaterThan(0);
    for (const res of run.results) {
      expect(ruleIds).toContain(res.ruleId);
      expect(typeof res.message.text).toBe('string');
      const loc = res.locations[0];
      expect(typeof loc.physicalLocation.artifactLocation.uri).toBe('string');
      expect(loc.physicalLocation.region.startLine).toBeGreaterThanOrEqual(1);
    }
    const onnx = run.results.find((x: { ruleId: string }) => x.ruleId === 'huggingface-token');
    expect(onnx.locations[0].physicalLocation.artifactLocation.uri).toBe('rep/model.onnx');
    expect(onnx.locations[0].logicalLocations[0].fullyQualifiedName).toBe('metadata_props[hf_token]');
    expect(run.invocations[0].toolExecutionNotifications[0].descriptor.id).toBe('SCAN_ERR_TRUNCATED');
  });

  describe('SARIF locations (regression #13), validated by the Microsoft SARIF Multitool', () => {
    type Location = {
      physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string }; region: Record<string, number> };
      logicalLocations?: { fullyQualifiedName: string; properties?: Record<string, number> }[];
    };
    const key = () => `OPENAI_API_KEY=${fakeOpenAiKey()}\n`;
    dir.write('uris/plain.env', key());
    dir.write('uris/with space #hash é.env', key());
    dir.write('uris/100%?.env', key());
    dir.write('c:colon.env', key()); // a colon in a first segment would read as a URI scheme
    dir.write('uris/models.zip', zip([{ name: 'conf dir/app.env', data: Buffer.from(`# conf\n${key()}`) }]));
    dir.write('uris/broken.safetensors', Buffer.from([1, 2, 3]));
    const outside = elsewhere.write('out side/leak.env', key());

    const report = async () => {
      const r = await dir.scan(['uris', 'c:colon.env', outside]);
      const sarif = JSON.parse(sarifReport(r));
      const run = sarif.runs[0];
      const byFile = new Map<string, Location>(
        r.findings.map((f, i) => [[f.file, ...f.location].join(' › '), run.results[i].locations[0]]),
      );
      return { r, text: sarifReport(r), run, byFile };
    };

    it('files under the root are percent-encoded references against %SRCROOT%, defined as a file: URI ending in /', async () => {
      const { run, byFile } = await report();
      expect(run.originalUriBaseIds).toEqual({ '%SRCROOT%': { uri: `${pathToFileURL(dir.root).href}/` } });
      const uri = (file: string) => byFile.get(file)?.physicalLocation.artifactLocation;
      expect(uri('uris/plain.env')).toEqual({ uri: 'uris/plain.env', uriBaseId: '%SRCROOT%' });
      expect(uri('uris/with space #hash é.env')).toEqual({
        uri: 'uris/with%20space%20%23hash%20%C3%A9.env',
        uriBaseId: '%SRCROOT%',
      });
      expect(uri('uris/100%?.env')).toEqual({ uri: 'uris/100%25%3F.env', uriBaseId: '%SRCROOT%' });
      expect(uri('c:colon.env')).toEqual({ uri: 'c%3Acolon.env', uriBaseId: '%SRCROOT%' });
      for (const location of byFile.values()) {
        expect(location.physicalLocation.artifactLocation.uri).not.toMatch(/^\//);
      }
    });

    it('files outside the root are absolute file: URIs', async () => {
      const { byFile } = await report();
      const location = [...byFile.entries()].find(([file]) => file.endsWith('leak.env') && file.startsWith('/'));
      expect(location?.[1].physicalLocation.artifactLocation).toEqual({ uri: pathToFileURL(outside).href });
      expect(location?.[1].physicalLocation.artifactLocation.uri).toMatch(/^file:\/\/\/.*\/out%20side\/leak\.env$/);
    });

    it('an archive member points at the archive on disk and names the member, with its own line apart', async () => {
      const { run, byFile } = await report();
      const member = byFile.get('uris/models.zip › conf dir/app.env')!;
      expect(member.physicalLocation).toEqual({
        artifactLocation: { uri: 'uris/models.zip', uriBaseId: '%SRCROOT%' },
        region: { startLine: 1 },
      });
      expect(member.logicalLocations).toEqual([
        { fullyQualifiedName: 'conf dir/app.env', kind: 'member', properties: { line: 2, column: 16 } },
      ]);
      const result = run.results.find((x: { locations: Location[] }) => x.locations[0] === member);
      expect(result.message.text).toMatch(/\(in conf dir\/app\.env:2\)$/);
    });

    it('the whole report passes the Multitool’s SARIF and GitHub code-scanning rules', async () => {
      const { text } = await report();
      expect(await validateSarif(text)).toEqual([]);
    }, 120_000); // a .NET program; slow to start on a loaded machine

    it('the Multitool does catch what #13 reported (a relative reference beginning with /)', async () => {
      const { text } = await report();
      const broken = JSON.parse(text);
      const location = broken.runs[0].results[0].locations[0].physicalLocation.artifactLocation;
      location.uri = `/${location.uri}`;
      const problems = await validateSarif(JSON.stringify(broken));
      expect(problems.map((p) => p.ruleId)).toContain('SARIF1004');
    }, 120_000);
  });

  it('a baseline accepts known findings, holds no values, and new findings still show', async () => {
    const r = await dir.scan(['rep']);
    const baseline = parseBaseline(JSON.stringify(createBaseline(r.findings)));
    expect(JSON.stringify(baseline)).not.toContain(key);
    const again = await dir.scan(['rep'], { baseline });
    expect(again.findings).toEqual([]);
    expect(again.baselined).toBe(2);
    dir.write('rep/new.env', `TOKEN=${fakeOpenAiKey()}\n`);
    const third = await dir.scan(['rep'], { baseline });
    expect(third.findings.map((f) => f.file)).toEqual(['rep/new.env']);
  });

  it('parses secrets files in dotenv and JSON form', () => {
    const parsed = parseKnownSecrets('# c\nexport DB="pw-123456"\nEMPTY=\nK=v\n');
    expect(parsed).toEqual(
      expect.arrayContaining([
        { name: 'DB', value: 'pw-123456' },
        { name: 'K', value: 'v' },
      ]),
    );
    expect(parsed.some((s) => s.name === 'EMPTY')).toBe(false);
    expect(parseKnownSecrets('{"a":"b"}')).toEqual([{ name: 'a', value: 'b' }]);
  });
});

describe('walker', () => {
  it('honours .gitignore and --exclude and never follows symlinks', async () => {
    const key = fakeOpenAiKey();
    dir.write('walk/.gitignore', 'ignored/\n*.log\n');
    dir.write('walk/ignored/a.env', `K=${key}`);
    dir.write('walk/x.log', `K=${key}`);
    dir.write('walk/skip/me.txt', `K=${key}`);
    dir.write('walk/keep.txt', `K=${key}`);
    dir.write('outside/secret.txt', `K=${key}`);
    symlinkSync(`${dir.root}/outside`, `${dir.root}/walk/link`);
    symlinkSync(`${dir.root}/outside/secret.txt`, `${dir.root}/walk/file-link`);
    const r = await dir.scan(['walk'], { exclude: ['skip/'] });
    expect(r.findings.map((f) => f.file)).toEqual(['walk/keep.txt']);
    const all = await dir.scan(['walk'], { gitignore: false });
    expect(all.findings.map((f) => f.file).sort()).toEqual([
      'walk/ignored/a.env',
      'walk/keep.txt',
      'walk/skip/me.txt',
      'walk/x.log',
    ]);
  });

  it('a missing path is an error and the other paths are scanned', async () => {
    dir.write('present/k.txt', `K=${fakeOpenAiKey()}`);
    const r = await dir.scan(['nope', 'present']);
    expect(r.errors).toMatchObject([{ code: 'SCAN_ERR_READ', file: 'nope' }]);
    expect(r.findings).toHaveLength(1);
  });
});

describe('--against-vault', () => {
  it('fetches keyed fingerprints and reports vault:<path>#<field> without the values crossing the wire', async () => {
    const stored = `pw-${randomBytes(12).toString('hex')}`;
    const hmacKey = randomBytes(32);
    let auth: string | undefined;
    const server = createServer((req, res) => {
      auth = req.headers.authorization;
      if (req.method !== 'POST' || req.url !== '/v1/scan/fingerprints') {
        res.writeHead(404).end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          algorithm: 'hmac-sha256',
          key: hmacKey.toString('base64url'),
          min_length: 8,
          fingerprints: [
            {
              path: 'kv/app/db',
              field: 'password',
              version: 3,
              hmac: createHmac('sha256', hmacKey).update(stored).digest('hex'),
            },
          ],
        }),
      );
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const vault = await fetchVaultFingerprints({ addr, token: 'test-token' });
      expect(auth).toBe('Bearer test-token');
      dir.write('vault/config.yaml', `db:\n  host: x\n  password: "${stored}"\n`);
      dir.write('vault/model.onnx', onnxModel({ metadata: { db: stored } }));
      const r = await dir.scan(['vault'], { vault });
      const hits = r.findings.filter((f) => f.kind === 'vault');
      expect(hits.map((f) => [f.file, f.ruleId, f.line])).toEqual([
        ['vault/config.yaml', 'vault:kv/app/db#password', 3],
        ['vault/model.onnx', 'vault:kv/app/db#password', undefined],
      ]);
      await expect(fetchVaultFingerprints({ addr: `${addr}/nowhere`, token: 't' })).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });
});
