// Child process for the SIGKILL test (audit-kill.test.ts): writes audit events
// as fast as it can from 20 concurrent writers to SQLite and a JSON-lines
// file, printing `ack <seq> <request_id>` to stdout only after record()
// resolved. The parent kills it with SIGKILL mid-stream.
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createStorage } from '@custos/storage';
import { AuditFileSink } from '../audit/audit-file-sink.js';
import { AuditLog } from '../audit/audit-log.js';
import { requestEvent } from './audit-fixtures.js';

const [dbPath, filePath, keyPath, startAt] = process.argv.slice(2);
const storage = createStorage(`sqlite:${dbPath}`);
await storage.migrate();
// The parent made the signing key, so it can verify this child's checkpoints after the kill.
const signer = { keyId: 'kill-test', privateKey: createPrivateKey(await readFile(keyPath!)) };
const log = await AuditLog.open({
  store: storage.audit,
  signer,
  checkpointEvery: 200,
  sinks: [await AuditFileSink.open({ path: filePath! })],
});
let n = Number(startAt ?? 0);
process.stdout.write('ready\n');
await Promise.all(
  Array.from({ length: 20 }, async () => {
    for (;;) {
      const i = n++;
      const r = await log.record(requestEvent(i));
      process.stdout.write(`ack ${r.seq} req-${i}\n`);
    }
  }),
);
