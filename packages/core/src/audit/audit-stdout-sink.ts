import type { Writable } from 'node:stream';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { formatAuditCheckpointLine, formatAuditRecordLine } from './audit-line.js';
import type { AuditSink } from './audit-sink.js';

/**
 * Writes records as JSON lines to stdout (or another stream), for container
 * platforms that collect stdout. Not durable: a pipe gives no guarantee the
 * reader kept the line, so this sink never acknowledges a batch on its own.
 */
export class AuditStdoutSink implements AuditSink {
  readonly name = 'stdout';
  readonly durable = false;
  readonly #out: Writable;

  constructor(out: Writable = process.stdout) {
    this.#out = out;
  }

  write(records: readonly AuditRecord[]): Promise<void> {
    return this.#write(records.map((r) => `${formatAuditRecordLine(r)}\n`).join(''));
  }

  writeCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return this.#write(`${formatAuditCheckpointLine(checkpoint)}\n`);
  }

  async close(): Promise<void> {}

  #write(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#out.write(text, (error) => (error ? reject(error) : resolve()));
    });
  }
}
