// Child process for the SIGKILL durability test: writes forever and prints
// each sequence number once its write is acknowledged (the promise resolved).
import { SqliteStorage } from '../sqlite-storage.js';

const path = process.argv[2];
const synchronous = process.argv[3]?.startsWith('normal') ? 'normal' : 'full';
const exclusive = process.argv[3]?.endsWith('exclusive') ?? false;
if (!path) throw new Error('usage: sigkill-writer PATH [full|normal|normal-exclusive]');
const storage = new SqliteStorage({ path, synchronous, exclusive });
await storage.migrate();
for (let i = 1; ; i++) {
  await storage.transaction(async (tx) => {
    await tx.entries.put('sys', `k/${i}`, new Uint8Array([i & 0xff]));
    await tx.audit.append([{ seq: i, ts: new Date().toISOString(), prevHash: 'p', hash: 'h', event: '{}' }]);
  });
  process.stdout.write(`${i}\n`);
}
