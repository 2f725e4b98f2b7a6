import { CustosApiError, CustosProtocolError, CustosSdkError } from './custos-errors.js';
import type { HttpTransport, TaskAuth } from './http-transport.js';
import { routePath } from './sdk-routes.js';

/** A secret was rotated: a task that read it may want to re-read (its own tree stays pinned). */
export interface RotationEvent {
  readonly type: 'secret.rotated';
  readonly path: string;
  readonly version: number;
  readonly time: string;
}

/** Options of {@link Task.onRotation}. */
export interface RotationSubscriptionOptions {
  /** Told about a failure: a dropped stream (then it reconnects) or a refusal (then it stops). */
  readonly onError?: (error: CustosSdkError) => void;
}

/** The longest SSE line accepted: an event is a path and a version, so anything longer is not custos. */
const MAX_LINE = 64 * 1024;
const MAX_RECONNECT_DELAY_MS = 30_000;
const FIRST_RECONNECT_DELAY_MS = 500;

/**
 * A subscription to `GET /v1/events` (server-sent events) with a task's
 * token: custos sends `secret.rotated` for the paths the task may read, and
 * stops when the task ends or is revoked.
 *
 * A stream that drops (a custos restart, a proxy timeout) is reopened with
 * backoff (0.5 s doubling to 30 s); events during the gap are not replayed —
 * custos keeps no event log — so after `onError` a task that must not miss a
 * rotation re-reads what it depends on. A refusal (401, 403: the task is
 * over) stops the subscription for good. {@link close} stops it, and so does
 * the end of the task.
 */
export class RotationSubscription {
  readonly #controller = new AbortController();
  readonly #ready: Promise<void>;
  #markReady!: () => void;
  #failReady!: (error: unknown) => void;
  readonly #done: Promise<void>;

  /** @internal Built by {@link Task.onRotation}. */
  constructor(
    transport: HttpTransport,
    auth: TaskAuth,
    onEvent: (event: RotationEvent) => void,
    options: RotationSubscriptionOptions,
  ) {
    this.#ready = new Promise((resolve, reject) => {
      this.#markReady = resolve;
      this.#failReady = reject;
    });
    // Whoever awaits `ready` sees a refusal; nobody awaiting it is no unhandled rejection.
    this.#ready.catch(() => undefined);
    this.#done = this.#run(transport, auth, onEvent, options);
  }

  /**
   * Resolves once custos has confirmed the subscription (events from then on
   * are delivered); rejects if it is refused before that.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Resolves when the subscription has stopped (closed, or refused). */
  get done(): Promise<void> {
    return this.#done;
  }

  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Stops listening and closes the stream. */
  close(): void {
    this.#controller.abort();
  }

  async #run(
    transport: HttpTransport,
    auth: TaskAuth,
    onEvent: (event: RotationEvent) => void,
    options: RotationSubscriptionOptions,
  ): Promise<void> {
    const signal = this.#controller.signal;
    let delay = FIRST_RECONNECT_DELAY_MS;
    while (!signal.aborted) {
      try {
        const response = await transport.stream(routePath('events'), auth.token, signal, auth.dpop);
        await readEvents(response, signal, {
          subscribed: () => {
            delay = FIRST_RECONNECT_DELAY_MS;
            this.#markReady();
          },
          event: onEvent,
        });
        if (signal.aborted) break;
        options.onError?.(new CustosProtocolError('the event stream ended'));
      } catch (error) {
        if (signal.aborted) break;
        const sdkError = error instanceof CustosSdkError ? error : new CustosProtocolError('the event stream failed');
        options.onError?.(sdkError);
        // Refused: this token may not listen any more (the task is over). Reconnecting would not change that.
        if (error instanceof CustosApiError && error.status >= 400 && error.status < 500) {
          this.#failReady(error);
          break;
        }
      }
      await sleep(delay, signal);
      delay = Math.min(MAX_RECONNECT_DELAY_MS, delay * 2);
    }
    this.#controller.abort();
    this.#markReady(); // closed before it was confirmed: nothing left to wait for
  }
}

/** Reads a text/event-stream body (WHATWG HTML §9.2) until it ends or `signal` aborts. */
async function readEvents(
  response: Response,
  signal: AbortSignal,
  on: { subscribed: () => void; event: (event: RotationEvent) => void },
): Promise<void> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffer = '';
  let type = '';
  let data: string[] = [];
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline = buffer.search(/\r\n|\r|\n/);
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(buffer.startsWith('\r\n', newline) ? newline + 2 : newline + 1);
        if (line === '') {
          if (type === 'secret.rotated' && data.length > 0) {
            const event = rotationEvent(data.join('\n'));
            if (event) on.event(event);
          }
          type = '';
          data = [];
        } else if (line.startsWith(':')) {
          if (line.slice(1).trim() === 'subscribed') on.subscribed();
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(line.startsWith(': ', colon) ? colon + 2 : colon + 1);
          if (field === 'event') type = text;
          else if (field === 'data') data.push(text);
        }
        newline = buffer.search(/\r\n|\r|\n/);
      }
      if (buffer.length > MAX_LINE) throw new CustosProtocolError('an event line too long');
    }
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

/** The event in `data`, if it is a well-formed rotation event (anything else is ignored). */
function rotationEvent(data: string): RotationEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  const e = parsed as Partial<RotationEvent> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    e.type !== 'secret.rotated' ||
    typeof e.path !== 'string' ||
    !Number.isSafeInteger(e.version) ||
    typeof e.time !== 'string'
  ) {
    return undefined;
  }
  return Object.freeze({ type: e.type, path: e.path, version: e.version as number, time: e.time });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
