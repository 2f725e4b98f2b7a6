import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../redactor.js';
import { createRedactNodeStream, createRedactStream } from './redact-stream.js';

const secret = 'sEcr3t-vAlue-for-task-42';
const redactor = createRedactor({ secrets: [{ name: 'task', value: secret }] });
const text = `start ${secret} middle é€😀 ${secret} end`;

describe('stream adapters', () => {
  it('web TransformStream', async () => {
    const chunks = [...text];
    const readable = new ReadableStream<string>({
      start(c) {
        for (const ch of chunks) c.enqueue(ch);
        c.close();
      },
    }).pipeThrough(createRedactStream(redactor));
    let out = '';
    for await (const piece of readable) out += piece;
    expect(out).toBe(redactor.redact(text));
  });

  it('Node Transform, with multi-byte characters split across Buffers', async () => {
    const bytes = Buffer.from(text);
    const pieces = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    let out = '';
    for await (const piece of Readable.from(pieces).pipe(createRedactNodeStream(redactor))) out += piece;
    expect(out).toBe(redactor.redact(text));
    expect(out).not.toContain(secret);
  });
});
