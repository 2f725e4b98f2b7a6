import { createHmac, randomUUID } from 'node:crypto';
import { egressFetch } from '../egress/egress-fetch.js';
import { type EgressPolicy, isEgressRefusal } from '../egress/egress-policy.js';
import type { Finding } from './finding.js';

/** The header carrying the signature: `sha256=<hex HMAC-SHA256(secret, raw body)>`. */
export const ALERT_WEBHOOK_SIGNATURE_HEADER = 'x-custos-signature';

export interface AlertWebhookOptions<T = Finding> {
  /** Where findings are POSTed. An operator's setting; the egress policy decides whether it may be reached. */
  readonly url: string;
  /** The HMAC key (at least 32 bytes) the receiver verifies the signature with. */
  readonly secret: Uint8Array;
  /**
   * `summary` (default): id, rule, severity, time, subject and evidence —
   * no explanation, which may quote secret paths kept behind the barrier.
   * `full`: the explanation too, for a receiver trusted with them.
   */
  readonly include?: 'summary' | 'full';
  /** Findings waiting for delivery at most (default 1,000); beyond, new ones are dropped and counted. */
  readonly maxQueue?: number;
  /** Waits before each retry (ms, default 1 s, 5 s, 30 s, 2 min, 5 min). */
  readonly retryMs?: readonly number[];
  /** Told when delivery starts dropping findings, and when one is given up; counts only, no finding contents. */
  readonly onReport?: (report: AlertWebhookReport) => void;
  /**
   * What is sent for an item other than a finding (the access-request
   * notifications reuse this sink, its signing and its delivery): the body's
   * fields besides `delivery` and `sent_at`. Default: the finding format.
   */
  readonly format?: (item: T) => Record<string, unknown>;
  /** The `user-agent` header (default `custos-alerts`). */
  readonly userAgent?: string;
}

export interface AlertWebhookStats {
  queued: number;
  delivered: number;
  /** Given up after every retry, or refused (by the egress policy, or a 4xx). */
  failed: number;
  /** Never queued: the queue was full. */
  dropped: number;
}

export type AlertWebhookReport =
  | { readonly kind: 'dropping'; readonly stats: AlertWebhookStats }
  | { readonly kind: 'failed'; readonly status?: number; readonly code?: string; readonly stats: AlertWebhookStats };

interface Delivery {
  readonly body: string;
  attempt: number;
}

/**
 * The webhook alert sink: POSTs each finding as JSON, signed with
 * HMAC-SHA256 over the exact body bytes (`X-Custos-Signature:
 * sha256=<hex>`). The body carries a unique `delivery` id and `sent_at`, so a
 * receiver can refuse a replayed delivery and one that is too old.
 *
 * **Never in a request's way.** {@link offer} only queues (bounded: when full,
 * the finding is dropped and counted, and the first drop of a run is
 * reported). One delivery at a time goes out, through the egress policy
 * (its allow-list, its deadline, no redirects), so a receiver that is down
 * or slow costs one pending call and a queue, never a request's time.
 *
 * **Retries** with growing waits on network failures, timeouts, 5xx and
 * 429; a refusal by the egress policy or another 4xx is not retried (it will
 * not change). Findings are stored before they reach any sink: a finding
 * the webhook loses is still in `custos alerts list`.
 */
export class AlertWebhookSink<T = Finding> {
  readonly #url: string;
  readonly #secret: Uint8Array;
  readonly #full: boolean;
  readonly #maxQueue: number;
  readonly #retryMs: readonly number[];
  readonly #onReport: (report: AlertWebhookReport) => void;
  readonly #format: ((item: T) => Record<string, unknown>) | undefined;
  readonly #userAgent: string;
  readonly #egress: EgressPolicy;
  readonly #queue: Delivery[] = [];
  readonly #stats: AlertWebhookStats = { queued: 0, delivered: 0, failed: 0, dropped: 0 };
  #running: Promise<void> | undefined;
  #dropping = false;
  #closed = false;
  #wait: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  readonly #abort = new AbortController();

  constructor(egress: EgressPolicy, options: AlertWebhookOptions<T>) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RangeError('the alert webhook URL is http(s)');
    // Credentials in the URL would travel to wherever it points, and into logs of the URL.
    if (url.username || url.password) throw new RangeError('the alert webhook URL carries no credentials');
    if (options.secret.byteLength < 32) throw new RangeError('the alert webhook secret is at least 32 bytes');
    this.#egress = egress;
    this.#url = url.href;
    this.#secret = options.secret;
    this.#full = options.include === 'full';
    this.#maxQueue = options.maxQueue ?? 1_000;
    this.#retryMs = options.retryMs ?? [1_000, 5_000, 30_000, 120_000, 300_000];
    this.#onReport = options.onReport ?? (() => undefined);
    this.#format = options.format;
    this.#userAgent = options.userAgent ?? 'custos-alerts';
  }

  /** Queues a finding for delivery and returns at once (an engine listener). */
  readonly offer = (finding: T): void => {
    if (this.#closed) return;
    if (this.#queue.length >= this.#maxQueue) {
      this.#stats.dropped++;
      if (!this.#dropping) {
        // Once per run of drops, not per drop: a flood of findings must not become a flood of log lines.
        this.#dropping = true;
        this.#report({ kind: 'dropping', stats: this.stats() });
      }
      return;
    }
    this.#dropping = false;
    this.#queue.push({ body: this.#body(finding), attempt: 0 });
    this.#stats.queued = this.#queue.length;
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
  };

  stats(): AlertWebhookStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  /** Resolves when the queue is empty (tests). */
  async drained(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops: the call in flight is cut off, waits end, what is queued is not sent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    this.#queue.length = 0;
    if (this.#wait) {
      clearTimeout(this.#wait.timer);
      this.#wait.resolve();
    }
    await this.#running;
  }

  #body(item: T): string {
    if (this.#format) {
      return JSON.stringify({ ...this.#format(item), delivery: randomUUID(), sent_at: new Date().toISOString() });
    }
    const { explanation, ...summary } = item as Finding;
    return JSON.stringify({
      type: 'alert.raised',
      delivery: randomUUID(),
      sent_at: new Date().toISOString(),
      alert: this.#full ? { ...summary, explanation } : summary,
    });
  }

  async #run(): Promise<void> {
    while (!this.#closed && this.#queue.length > 0) {
      const delivery = this.#queue[0]!;
      const outcome = await this.#send(delivery.body);
      if (outcome.kind === 'ok') {
        this.#queue.shift();
        this.#stats.delivered++;
        continue;
      }
      const wait = outcome.kind === 'retry' ? this.#retryMs[delivery.attempt] : undefined;
      if (wait === undefined || this.#closed) {
        this.#queue.shift();
        this.#stats.failed++;
        this.#report({ kind: 'failed', ...outcome.detail, stats: this.stats() });
        continue;
      }
      delivery.attempt++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wait = undefined;
          resolve();
        }, wait);
        timer.unref();
        this.#wait = { timer, resolve };
      });
    }
    this.#stats.queued = this.#queue.length;
  }

  async #send(
    body: string,
  ): Promise<{ kind: 'ok' } | { kind: 'retry' | 'give-up'; detail: { status?: number; code?: string } }> {
    const signature = createHmac('sha256', this.#secret).update(body).digest('hex');
    try {
      const response = await egressFetch(this.#egress, this.#url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': this.#userAgent,
          [ALERT_WEBHOOK_SIGNATURE_HEADER]: `sha256=${signature}`,
        },
        body,
        signal: this.#abort.signal,
      });
      if (response.status >= 200 && response.status < 300) return { kind: 'ok' };
      // A redirect is not followed (the policy's rule) and counts as a refusal.
      const retry = response.status >= 500 || response.status === 429;
      return { kind: retry ? 'retry' : 'give-up', detail: { status: response.status } };
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'CUSTOS_ERR_EGRESS_FAILED';
      // The policy refusing the destination will not change on a retry.
      return { kind: isEgressRefusal(error) ? 'give-up' : 'retry', detail: { code } };
    }
  }

  #report(report: AlertWebhookReport): void {
    try {
      this.#onReport(report);
    } catch {
      // Reporting must not stop delivery.
    }
  }
}
