// Child process for the rotation SIGKILL test (audit-rotation-kill.test.ts):
// like audit-kill-child.ts, 20 concurrent writers to SQLite and a JSON-lines
// file printing `ack <seq> <request_id>` once record() resolved, with the file
// rotated every 32 KiB. At its first rotation it SIGKILLs itself at the step
// named on the command line, so the kill lands exactly between two steps.
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createStorage } from '@custos/storage';
import { AuditFileSink } from '../audit/audit-file-sink.js';
import { AuditLog } from '../audit/audit-log.js';
import { requestEvent } from './audit-fixtures.js';

const [dbPath, filePath, keyPath, killAt] = process.argv.slice(2);
const storage = createStorage(`sqlite:${dbPath}`);
await storage.migrate();
const signer = { keyId: 'kill-test', privateKey: createPrivateKey(await readFile(keyPath!)) };
const log = await AuditLog.open({
  store: storage.audit,
  signer,
  checkpointEvery: 200,
  sinks: [
    await AuditFileSink.open({
      path: filePath!,
      signer,
      rotation: { maxBytes: 32 * 1024 },
      rotationStep: (step) => {
        if (step !== killAt) return;
        process.stdout.write(`kill ${step}\n`, () => process.kill(process.pid, 'SIGKILL'));
        // Nothing more happens in this process: the rotation waits here until the kill lands.
        return new Promise<void>(() => undefined);
      },
    }),
  ],
});
let n = 0;
await Promise.all(
  Array.from({ length: 20 }, async () => {
    for (;;) {
      const i = n++;
      const r = await log.record(requestEvent(i));
      process.stdout.write(`ack ${r.seq} req-${i}\n`);
    }
  }),
);
