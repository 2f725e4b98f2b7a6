import type { StreamEvent } from './event-stream.js';

/** What every page gets: the operator token and the shared event stream. */
export interface PageProps {
  token: string;
  /** Subscribes to `GET /v1/events` (one stream per signed-in tab); returns the unsubscribe. */
  subscribe: (listener: (event: StreamEvent) => void) => () => void;
}
