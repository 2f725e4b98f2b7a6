/** An audit event as stored, for assertions on the fields a touch or a request leaves. */
export interface RecordedEvent {
  readonly request_id?: string;
  readonly decision?: string;
  readonly auth?: Record<string, unknown>;
  readonly request: Record<string, string | undefined>;
  readonly data: Record<string, string>;
  readonly details: Record<string, unknown>;
}

/**
 * The audit event a finding's first evidence entry names, read from the
 * store at that seq — after checking that the record there has the hash the
 * finding quotes, so a test proves the evidence points into the real chain.
 */
export async function evidenceEvent(
  audit: { range(from: number, to: number): Promise<readonly { hash: string; event: string }[]> },
  finding: { readonly evidence: readonly { readonly seq: number; readonly hash: string }[] },
): Promise<RecordedEvent> {
  const first = finding.evidence[0];
  if (!first) throw new Error('the finding has no evidence');
  const [record] = await audit.range(first.seq, first.seq);
  if (!record || record.hash !== first.hash)
    throw new Error(`evidence seq ${first.seq} is not that record of the chain`);
  return JSON.parse(record.event) as RecordedEvent;
}

/** The findings in `now` that are not in `before` (by id). */
export function raisedSince<F extends { readonly id: string }>(before: readonly F[], now: readonly F[]): F[] {
  const seen = new Set(before.map((f) => f.id));
  return now.filter((f) => !seen.has(f.id));
}
