import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

// Archives plus the online audit files, verified offline as one chain
// (docs/audit.md, "Verifying across archives"): a real server rotating its
// audit file at 64 KiB, archived three times by the CLI, under traffic.
describe('custos audit verify --file ARCHIVE… AUDIT-FILE… (end to end)', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  let archives: string[];
  let files: string[];
  let pem: string;

  /** Audited requests: a few hundred compact events fill the 64 KiB file. */
  async function traffic(n: number) {
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${h.server.address}/v1/audit/tail?n=1`, {
        headers: { authorization: `Bearer ${h.rootToken()}` },
      });
      await res.arrayBuffer();
    }
  }

  beforeAll(async () => {
    h = await startCliServer({}, { audit: { file: { path: 'audit.jsonl', max_bytes: 65536 } } });
    for (let n = 1; n <= 3; n++) {
      // Before the third, more than the file's 64 KiB (about 160 bytes an
      // event): it rotates at least once after archive 2, so the files left
      // no longer hold archive 3's records and a missing archive 3 shows.
      await traffic(n === 3 ? 700 : 400);
      const run = await h.cli(['audit', 'archive', '--before', new Date(Date.now() + 60_000).toISOString()]);
      expect(run, run.stderr).toMatchObject({ code: 0 });
      expect(run.stdout).toMatch(new RegExp(`^archive ${n} `));
    }
    await traffic(50);
    const archiveDir = join(h.dir, 'audit-archive');
    archives = readdirSync(archiveDir)
      .sort()
      .map((n) => join(archiveDir, n));
    expect(archives).toHaveLength(3);
    const rotated = readdirSync(h.dir)
      .filter((n) => /^audit-\d{8}T\d{6}Z-\d{6}\.jsonl$/.test(n))
      .sort();
    files = [...rotated.map((n) => join(h.dir, n)), join(h.dir, 'audit.jsonl')];
    const keys = (await (await fetch(`${h.server.address}/v1/audit/public-keys`)).json()) as {
      keys: Array<{ public_key_pem: string }>;
    };
    pem = join(h.dir, 'audit.pub');
    writeFileSync(pem, keys.keys[0]!.public_key_pem);
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  const verify = (paths: readonly string[]) => h.cli(['audit', 'verify', '--file', ...paths, '--public-key', pem]);

  it('the archives then the rotated and current files verify as one chain, every record from seq 1', async () => {
    const ok = await verify([...archives, ...files]);
    expect(ok, ok.stderr).toMatchObject({ code: 0 });
    expect(ok.stdout).toMatch(/^OK: \d+ events, .*3 archives in sequence \(\d+ events\)/);
    const json = JSON.parse(
      (await h.cli(['audit', 'verify', '--file', ...archives, ...files, '--public-key', pem, '--json'])).stdout,
    ) as {
      ok: boolean;
      events: number;
      lastSeq: number;
      archivedEvents: number;
    };
    // Every record from 1 to the head, each once in the count: the archives' and the files' after them.
    expect(json).toMatchObject({ ok: true });
    expect(json.events).toBe(json.lastSeq);
    expect(json.archivedEvents).toBeLessThan(json.lastSeq);
  });

  it('an archive missing in the middle is named between its neighbours', async () => {
    const res = await verify([archives[0]!, archives[2]!, ...files]);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toMatch(
      /FAILED .* in .*audit-archive-000003\.jsonl\.gz: archive-missing — 1 archive \(number 2\) missing between audit-archive-000001\.jsonl\.gz and audit-archive-000003\.jsonl\.gz/,
    );
  });

  it('the last archive missing (between the archives and the files) is named with the records it held', async () => {
    const res = await verify([archives[0]!, archives[1]!, ...files]);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toMatch(
      /FAILED at seq \d+ in .*audit.*\.jsonl: archive-missing — records \d+–\d+ are neither in the archives given .*archive 2.*: archive 3 or later/,
    );
  });

  it('a reordered archive is named', async () => {
    const res = await verify([archives[1]!, archives[0]!, archives[2]!, ...files]);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toMatch(
      /archive-reordered — audit-archive-000001\.jsonl\.gz \(archive 1\) is given after audit-archive-000002\.jsonl\.gz/,
    );
  });

  it('the archives then an export of the online records (`custos audit export`) verify as one chain; without the last archive, the gap is named', async () => {
    const exported = await h.cli(['audit', 'export']);
    expect(exported, exported.stderr).toMatchObject({ code: 0 });
    const online = join(h.dir, 'online-export.jsonl');
    writeFileSync(online, exported.stdout);
    // The export starts at the online anchor (the record the last archive ends at), not at seq 1.
    expect(JSON.parse(exported.stdout.split('\n')[0]!).seq).toBeGreaterThan(1);
    const ok = await verify([...archives, online]);
    expect(ok, ok.stdout).toMatchObject({ code: 0 });
    expect(ok.stdout).toMatch(/^OK: \d+ events, .*3 archives in sequence/);
    const missing = await verify([archives[0]!, archives[1]!, online]);
    expect(missing.code).not.toBe(0);
    expect(missing.stdout).toMatch(/archive-missing — records \d+–\d+ are neither in the archives given/);
  });

  it('archives after audit files is a usage error', async () => {
    const res = await verify([...files, ...archives]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/archives \(\.gz\) first/);
  });
});
