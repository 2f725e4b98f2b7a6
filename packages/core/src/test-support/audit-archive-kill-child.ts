// Child process for the archival SIGKILL test (audit-archive-kill.test.ts):
// 300 audited events into SQLite, then an archive run while 5 concurrent
// writers go on recording (printing `ack <seq> <request_id>` once record()
// resolved). The run SIGKILLs this process at the step named on the command
// line (for `batch-deleted`, after the third delete batch; for
// `dictionary-batch-deleted`, after the first batch of dictionary entries),
// so the kill lands exactly between two steps of the run.
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setImmediate } from 'node:timers/promises';
import { createStorage } from '@custos/storage';
import { runAuditArchive } from '../audit/audit-archive-run.js';
import { AuditLog } from '../audit/audit-log.js';
import { KILL_TEST_DICTIONARY_SPAN, requestEvent } from './audit-fixtures.js';

const [dbPath, dir, keyPath, killAt] = process.argv.slice(2);
const storage = createStorage(`sqlite:${dbPath}`, { sqlite: { auditDictionarySpan: KILL_TEST_DICTIONARY_SPAN } });
await storage.migrate();
const signer = { keyId: 'kill-test', privateKey: createPrivateKey(await readFile(keyPath!)) };
const log = await AuditLog.open({ store: storage.audit, signer, checkpointEvery: 50, sinks: [] });
let n = 0;
const record = async () => {
  const i = n++;
  const r = await log.record(requestEvent(i));
  process.stdout.write(`ack ${r.seq} req-${i}\n`);
};
for (let k = 0; k < 300; k++) await record();
await log.checkpoint();
// Load as requests bring it: each writer waits for the next turn of the event loop, as I/O would.
const writers = Array.from({ length: 5 }, async () => {
  for (;;) {
    await setImmediate();
    await record();
  }
});
let batches = 0;
/** Whether the records and checkpoints below the anchor are gone: the batches after this are dictionary entries. */
const onlyDictionaryLeft = async () => {
  const anchor = (await storage.audit.archiveState())!.checkpoint.seq;
  const [record] = await storage.audit.range(1, 1);
  const [checkpoint] = await storage.audit.checkpointsFrom(1, 1);
  return record?.seq === anchor && checkpoint?.seq === anchor;
};
let dictionaryNext = false;
await runAuditArchive({
  store: storage.audit,
  signer,
  dir: dir!,
  before: new Date(Date.now() + 1000),
  deleteBatch: 20,
  holder: 'kill-test-node',
  step: async (step) => {
    if (killAt === 'dictionary-batch-deleted') {
      if (step !== 'batch-deleted') return;
      if (!dictionaryNext) {
        dictionaryNext = await onlyDictionaryLeft();
        return;
      }
    } else if (step !== killAt || (step === 'batch-deleted' && ++batches < 3)) return;
    process.stdout.write(`kill ${killAt}\n`, () => process.kill(process.pid, 'SIGKILL'));
    // Nothing more happens in this run: it waits here until the kill lands.
    return new Promise<void>(() => undefined);
  },
});
process.stdout.write('kill none\n');
await Promise.race(writers);
