import type { Redactor } from '../redactor.js';

/** How to read and replace the text of one chunk of an LLM stream. */
export interface DeltaAccessor<T> {
  /** The chunk's text, or undefined when it carries none (tool calls, finish). */
  get(chunk: T): string | undefined;
  /** A copy of the chunk with its text replaced; the input chunk is not modified. */
  set(chunk: T, text: string): T;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

/**
 * The shapes of the common SDKs:
 * - a plain string (Vercel AI SDK `textStream`);
 * - OpenAI chat completion chunks, `choices[0].delta.content`;
 * - Vercel AI SDK `fullStream` parts, `{ type: 'text-delta', textDelta }` (v4)
 *   or `{ type: 'text-delta', text }` (v5);
 * - OpenAI Responses API events, `{ type: 'response.output_text.delta', delta }`.
 */
export const sdkDeltaAccessor: DeltaAccessor<unknown> = {
  get(chunk) {
    if (typeof chunk === 'string') return chunk;
    if (!isObj(chunk)) return undefined;
    const choices = chunk.choices;
    if (Array.isArray(choices) && isObj(choices[0]) && isObj(choices[0].delta)) {
      const c = choices[0].delta.content;
      return typeof c === 'string' ? c : undefined;
    }
    if (chunk.type === 'text-delta') {
      if (typeof chunk.textDelta === 'string') return chunk.textDelta;
      if (typeof chunk.text === 'string') return chunk.text;
      if (typeof chunk.delta === 'string') return chunk.delta;
    }
    if (chunk.type === 'response.output_text.delta' && typeof chunk.delta === 'string') return chunk.delta;
    return undefined;
  },
  set(chunk, text) {
    if (typeof chunk === 'string') return text;
    const c = chunk as Obj;
    const choices = c.choices;
    if (Array.isArray(choices) && isObj(choices[0]) && isObj(choices[0].delta)) {
      const first = choices[0] as Obj & { delta: Obj };
      return { ...c, choices: [{ ...first, delta: { ...first.delta, content: text } }, ...choices.slice(1)] };
    }
    if (typeof c.textDelta === 'string') return { ...c, textDelta: text };
    if (typeof c.text === 'string') return { ...c, text };
    return { ...c, delta: text };
  },
};

/**
 * Wraps an async iterable of LLM deltas so their text is redacted across
 * chunk boundaries. Each text chunk is yielded with the part of the text that
 * can be released now (possibly empty); chunks without text pass through in
 * order. Text still held back at the end is yielded in one extra chunk, a
 * copy of the last text chunk — so the concatenated text equals
 * `redactor.redact(all text)`.
 *
 * @example
 * for await (const part of redactDeltas(openai.chat.completions.create({ stream: true, ... }), redactor)) {...}
 */
export async function* redactDeltas<T>(
  source: AsyncIterable<T> | Iterable<T>,
  redactor: Redactor,
  accessor: DeltaAccessor<T> = sdkDeltaAccessor as DeltaAccessor<T>,
): AsyncGenerator<T, void, undefined> {
  const stream = redactor.createStream();
  let last: T | undefined;
  for await (const chunk of source) {
    const text = accessor.get(chunk);
    if (text === undefined) {
      yield chunk;
      continue;
    }
    last = chunk;
    yield accessor.set(chunk, stream.write(text));
  }
  const rest = stream.end();
  if (rest.length > 0 && last !== undefined) yield accessor.set(last, rest);
}
