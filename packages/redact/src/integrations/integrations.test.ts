import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../redactor.js';
import { Fake, fakeCredential } from '../test-support/fake-credentials.js';
import { redactDeltas } from './delta-redaction.js';
import { redactResponse } from './fetch-redaction.js';
import { pinoRedaction } from './pino-redaction.js';

const fake = new Fake(13);
const secret = fake.password(20);
const redactor = createRedactor({ secrets: [{ name: 'task', value: secret }] });
const split = (s: string, size: number): string[] => s.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];

describe('pino integration', () => {
  it('redacts messages, fields and secret-named keys, and keeps lines valid JSON', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const [ghLine, gh] = fakeCredential['github-token']!(fake);
    const logger = pino({ base: null, ...pinoRedaction(redactor) }, sink);
    logger.info({ password: 'hunter2', detail: ghLine }, `calling upstream with "${secret}"`);
    logger.child({ token: 'abc' }).warn('child');
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!);
    expect(first.password).toBe('[REDACTED:password]');
    expect(first.msg).toBe('calling upstream with "[REDACTED:task]"');
    expect(first.detail).not.toContain(gh);
    expect(lines.join('')).not.toContain(secret);
  });
});

describe('fetch / SSE helper', () => {
  it('redacts a streamed body across chunk boundaries and drops content-length', async () => {
    const body = `data: {"delta":"the key is ${secret}"}\n\ndata: [DONE]\n\n`;
    const bytes = new TextEncoder().encode(body);
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
        controller.close();
      },
    });
    const response = new Response(source, {
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'content-length': String(bytes.length) },
    });
    const out = redactResponse(response, redactor);
    expect(out.headers.get('content-length')).toBeNull();
    expect(out.headers.get('content-type')).toBe('text/event-stream');
    expect(await out.text()).toBe(redactor.redact(body));
  });
});

describe('LLM delta helper', () => {
  const text = `Sure! Use the key ${secret} in the header.`;

  it('redacts OpenAI chat completion chunks', async () => {
    interface Chunk {
      id: string;
      choices: { index: number; delta: { content?: string }; finish_reason?: string }[];
    }
    async function* source(): AsyncGenerator<Chunk> {
      for (const piece of split(text, 4)) yield { id: 'c', choices: [{ index: 0, delta: { content: piece } }] };
      yield { id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
    }
    let joined = '';
    let finish = 0;
    for await (const chunk of redactDeltas(source(), redactor)) {
      joined += chunk.choices[0]?.delta.content ?? '';
      if ('finish_reason' in chunk.choices[0]!) finish++;
    }
    expect(joined).toBe(redactor.redact(text));
    expect(finish).toBe(1);
  });

  it('redacts Vercel AI SDK text streams and full-stream parts', async () => {
    let joined = '';
    for await (const piece of redactDeltas(split(text, 1), redactor)) joined += piece;
    expect(joined).toBe(redactor.redact(text));

    const parts = [
      ...split(text, 5).map((t) => ({ type: 'text-delta' as const, textDelta: t })),
      { type: 'finish' as const },
    ];
    joined = '';
    for await (const p of redactDeltas(parts, redactor)) if (p.type === 'text-delta') joined += p.textDelta;
    expect(joined).toBe(redactor.redact(text));
  });
});
