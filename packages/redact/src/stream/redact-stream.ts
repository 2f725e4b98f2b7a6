import { Transform, type TransformCallback } from 'node:stream';
import type { Redactor } from '../redactor.js';

/**
 * A web `TransformStream` of strings that redacts across chunk boundaries:
 * output equals `redactor.redact(whole input)` however the input is chunked,
 * and text is held back only while it could still be the start of a match.
 *
 * @example
 * const body = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(createRedactStream(redactor));
 */
export function createRedactStream(redactor: Redactor): TransformStream<string, string> {
  const stream = redactor.createStream();
  return new TransformStream<string, string>({
    transform(chunk, controller) {
      const out = stream.write(chunk);
      if (out.length > 0) controller.enqueue(out);
    },
    flush(controller) {
      const out = stream.end();
      if (out.length > 0) controller.enqueue(out);
    },
  });
}

/**
 * The Node `stream.Transform` variant. Accepts strings or Buffers (decoded as
 * UTF-8 without splitting a multi-byte character) and emits UTF-8 strings.
 *
 * @example
 * process.stdin.pipe(createRedactNodeStream(redactor)).pipe(process.stdout);
 */
export function createRedactNodeStream(redactor: Redactor): Transform {
  const stream = redactor.createStream();
  const decoder = new TextDecoder('utf-8');
  return new Transform({
    decodeStrings: false,
    encoding: 'utf8',
    transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
        const out = stream.write(text);
        callback(null, out.length > 0 ? out : undefined);
      } catch (e) {
        callback(e as Error);
      }
    },
    flush(callback: TransformCallback) {
      try {
        const out = stream.write(decoder.decode()) + stream.end();
        callback(null, out.length > 0 ? out : undefined);
      } catch (e) {
        callback(e as Error);
      }
    },
  });
}
