import type { Redactor } from '../redactor.js';
import { createRedactStream } from '../stream/redact-stream.js';

/**
 * A `Response` whose body is the redacted text of `response`'s body, streamed
 * (server-sent events and chunked LLM responses are redacted as they arrive,
 * not after the end). Status and headers are kept, except `content-length`,
 * which no longer holds, and `content-encoding`, since the body is decoded.
 *
 * @example
 * const res = redactResponse(await fetch(url, init), redactor);
 * for await (const text of res.body!.pipeThrough(new TextDecoderStream())) process.stdout.write(text);
 */
export function redactResponse(response: Response, redactor: Redactor): Response {
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  const body =
    response.body === null
      ? null
      : response.body
          .pipeThrough(new TextDecoderStream())
          .pipeThrough(createRedactStream(redactor))
          .pipeThrough(new TextEncoderStream());
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}
