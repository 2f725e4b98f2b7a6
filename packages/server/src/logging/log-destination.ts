import { writeSync } from 'node:fs';
import { hostname } from 'node:os';

export interface LogDestinationOptions {
  /** File descriptor written to (default 1, stdout). */
  readonly fd?: number;
  /** Turns each JSON line from pino into what is written (default: the line itself). */
  readonly format?: (line: string) => string;
  /** Bytes held while the log cannot be written (default 256 KiB); lines beyond are dropped and counted. */
  readonly maxHeldBytes?: number;
  /** How often held lines are retried while nothing new is logged (default 250 ms). */
  readonly retryMs?: number;
  /** The write(2) used (tests inject failures); default `fs.writeSync`. */
  readonly writeSync?: (fd: number, buffer: Uint8Array) => number;
}

const DEFAULT_MAX_HELD_BYTES = 256 * 1024;
const DEFAULT_RETRY_MS = 250;

/**
 * The server's log writer: a pino destination that never blocks and never
 * sleeps.
 *
 * Why not pino's own: its synchronous writer (sonic-boom) answers a failed
 * write by sleeping on the main thread and trying again, forever. With the
 * log on a full disk the whole process then stops — no request, not even
 * health, is answered and SIGTERM is never handled. A log is worth less than
 * the service it describes, so here a write is tried once: what cannot be
 * written is held (up to `maxHeldBytes`, retried on a timer and before every
 * new line) and what does not fit is dropped and counted. Once writing works
 * again, the held lines go out first, then one warning line with the number
 * dropped, so a reader knows exactly where the gap is.
 *
 * A line is written whole or held whole (a short write keeps its rest at the
 * head of the queue), so lines are never interleaved or torn.
 */
export class LogDestination {
  readonly #fd: number;
  readonly #format: (line: string) => string;
  readonly #maxHeldBytes: number;
  readonly #retryMs: number;
  readonly #write: (fd: number, buffer: Uint8Array) => number;
  readonly #held: Buffer[] = [];
  #heldBytes = 0;
  /** Dropped since the last report was queued. */
  #dropped = 0;
  #droppedTotal = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LogDestinationOptions = {}) {
    this.#fd = options.fd ?? 1;
    this.#format = options.format ?? ((line) => line);
    this.#maxHeldBytes = options.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
    this.#retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    this.#write = options.writeSync ?? writeSync;
  }

  /** True while lines are held or dropped: the log cannot be written right now. */
  get failing(): boolean {
    return this.#held.length > 0;
  }

  /** Lines dropped since this destination was created. */
  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  /** pino's entry point: one JSON line (newline included). */
  write(line: string): void {
    this.writeText(this.#format(line));
  }

  /** Writes text as it is (the startup banner), held or dropped like a log line. */
  writeText(text: string): void {
    if (this.#held.length > 0) {
      // What is held goes first, and may make room for this line. If it
      // still cannot be written, neither can this one: one attempt per line.
      this.#drain();
      if (this.#held.length > 0) {
        this.#enqueue(text);
        return;
      }
    }
    this.#enqueue(text);
    this.#drain();
  }

  /** Tries once more to write what is held (at shutdown); never waits. */
  flush(): void {
    this.#drain();
  }

  /** Stops retrying; what is still held is given up. */
  close(): void {
    this.#drain();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #enqueue(text: string, always = false): void {
    const buffer = Buffer.from(text, 'utf8');
    if (!always && this.#held.length > 0 && this.#heldBytes + buffer.length > this.#maxHeldBytes) {
      this.#dropped++;
      this.#droppedTotal++;
      return;
    }
    this.#held.push(buffer);
    this.#heldBytes += buffer.length;
  }

  #drain(): void {
    while (this.#held.length > 0) {
      const head = this.#held[0]!;
      let written: number;
      try {
        written = this.#write(this.#fd, head);
      } catch {
        // ENOSPC, EAGAIN, EPIPE, EIO…: all the same here — try again later, never now.
        this.#stall();
        return;
      }
      this.#heldBytes -= written;
      if (written < head.length) {
        this.#held[0] = head.subarray(written);
        this.#stall();
        return;
      }
      this.#held.shift();
      if (this.#held.length === 0 && this.#dropped > 0) {
        // The report takes the count with it; drops after this are counted anew.
        this.#enqueue(this.#format(droppedReport(this.#dropped)), true);
        this.#dropped = 0;
      }
    }
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #stall(): void {
    if (this.#timer) return;
    // Unref'd: held log lines must never keep a stopping process alive.
    this.#timer = setInterval(() => this.#drain(), this.#retryMs);
    this.#timer.unref();
  }
}

/** The warning line that closes a gap, in pino's JSON shape (the format turns it into text as any line). */
function droppedReport(dropped: number): string {
  return `${JSON.stringify({
    level: 40,
    time: Date.now(),
    pid: process.pid,
    hostname: hostname(),
    dropped_lines: dropped,
    msg: 'log lines were dropped while the log could not be written',
  })}\n`;
}
