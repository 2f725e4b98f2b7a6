import { apiBase } from './api.js';

/** One server-sent event from `GET /v1/events`. */
export interface StreamEvent {
  type: string;
  data: Record<string, unknown>;
}

/**
 * Follows `GET /v1/events` with `fetch()` streaming, so the token travels in
 * the `Authorization` header. (`EventSource` cannot send headers; a token in
 * the URL would land in proxy logs and browser history.) Reconnects after a
 * drop, with a growing pause; `stop()` ends it.
 */
export function followEvents(
  token: string,
  onEvent: (event: StreamEvent) => void,
  onState: (connected: boolean) => void,
): () => void {
  const controller = new AbortController();
  let pause = 500;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(`${apiBase()}v1/events`, {
          credentials: 'omit',
          headers: { authorization: `Bearer ${token}` },
          signal: controller.signal,
        });
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        onState(true);
        pause = 500;
        await readEvents(response.body, onEvent);
      } catch {
        // Aborted, refused or dropped: try again below unless stopped.
      }
      onState(false);
      if (controller.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 15_000);
    }
  };
  void run();
  return () => controller.abort();
}

async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: StreamEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) continue;
      try {
        onEvent({ type, data: JSON.parse(data) as Record<string, unknown> });
      } catch {
        // A malformed event is skipped, never shown.
      }
    }
  }
}
