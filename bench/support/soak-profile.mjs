// The soak's CPU profile of the server (`--cpu-prof`), split by the soak's
// minutes: how much of the server's main thread each minute was busy, and
// how much of that was archival's own work. The soak's CPU per request counts
// the whole process, so on a shared host it cannot tell archival's cost from
// the host's drift; the profile can, because it names the code each sample
// was in.
//
// A sample is archival's when any frame of its stack is in archival's code
// (`audit-archive-*` files, the store's `deleteArchived`): the run's own
// functions, the store reads and deletes it calls, and the continuations of
// its awaits (an async function resumes in its own frame). Compression runs
// on libuv's thread pool and is not in the profile (the process's CPU per
// request still counts it).
import { readFileSync } from 'node:fs';

const ARCHIVAL_URL = /\/audit-archive[^/]*\.js$/;
const ARCHIVAL_FUNCTION = /^(deleteArchived|archiveAudit)$/;

/**
 * `windows`: [startUs, endUs] per minute on the monotonic clock
 * (`process.hrtime`, µs), which on Linux is the clock V8's profiler stamps
 * its samples with, in every process. Returns per window `{ busyMs, archivalMs }`
 * (busy counts garbage collection too).
 */
export function profileByWindow(file, windows) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const archival = new Map();
  const isArchival = (id) => {
    if (archival.has(id)) return archival.get(id);
    const { url, functionName } = nodes.get(id).callFrame;
    const own = ARCHIVAL_URL.test(url) || ARCHIVAL_FUNCTION.test(functionName);
    const result = own || (parent.has(id) && isArchival(parent.get(id)));
    archival.set(id, result);
    return result;
  };
  const rows = windows.map(() => ({ busyMs: 0, archivalMs: 0 }));
  let t = profile.startTime;
  let w = 0;
  for (let i = 0; i < profile.samples.length && w < windows.length; i++) {
    t += profile.timeDeltas[i];
    // A sample stands for the time until the next one.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    while (w < windows.length && t >= windows[w][1]) w++;
    if (w === windows.length || t < windows[w][0]) continue;
    if (nodes.get(profile.samples[i]).callFrame.functionName === '(idle)') continue;
    rows[w].busyMs += ms;
    if (isArchival(profile.samples[i])) rows[w].archivalMs += ms;
  }
  return rows;
}
