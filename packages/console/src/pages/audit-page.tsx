import { useEffect, useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import type { PageProps } from '../page-props.js';

interface AuditEvent {
  type: string;
  kind?: string;
  time: string;
  auth?: { identity?: string; task_id?: string; task_chain?: string[]; token_accessor?: string; display_name?: string };
  request?: { method: string; route: string; path?: string; action?: string; source_ip?: string };
  decision?: string;
  status?: number;
  error_code?: string;
  reason?: string;
  details?: { refused_task?: { task_id?: string; identity?: string }; [name: string]: unknown };
}
interface AuditRecord {
  seq: number;
  ts: string;
  hash: string;
  event: AuditEvent;
}
type Verify =
  | { ok: true; events: number; checkpoints: number; lastSeq: number; lastCheckpointSeq: number }
  | { ok: false; reason?: string; seq?: number; events: number };

interface Query {
  identity: string;
  task: string;
  path: string;
  action: string;
  decision: string;
  since: string;
  until: string;
  scan: string;
}
const EMPTY: Query = { identity: '', task: '', path: '', action: '', decision: '', since: '', until: '', scan: '2000' };

/** Whether a record matches the search: each filled field must match (substring, case-insensitive; times inclusive). */
export function matches(record: AuditRecord, q: Query): boolean {
  const e = record.event;
  const has = (value: string | undefined, wanted: string) =>
    !wanted || (value ?? '').toLowerCase().includes(wanted.toLowerCase());
  const identity = [e.auth?.identity, e.auth?.display_name, e.auth?.token_accessor, e.details?.refused_task?.identity]
    .filter(Boolean)
    .join(' ');
  const task = [e.auth?.task_id, ...(e.auth?.task_chain ?? []), JSON.stringify(e.details ?? {})].join(' ');
  const at = Date.parse(record.ts);
  return (
    has(identity, q.identity) &&
    has(task, q.task) &&
    has(e.request?.path, q.path) &&
    has(e.request?.action ?? e.kind, q.action) &&
    (!q.decision || e.decision === q.decision) &&
    (!q.since || at >= Date.parse(q.since)) &&
    (!q.until || at <= Date.parse(q.until))
  );
}

/**
 * The audit trail: the chain's verification (`GET /v1/audit/verify`) and a
 * search over the newest records (`GET /v1/audit/tail`), by identity, task,
 * path, action, decision and time.
 */
export function AuditPage({ token }: PageProps) {
  const [verify, setVerify] = useState<Verify | null>(null);
  const [query, setQuery] = useState<Query>(EMPTY);
  const [records, setRecords] = useState<AuditRecord[] | null>(null);
  const [scanned, setScanned] = useState(0);
  /** Counts finished searches (`data-searches`), so a reader can tell fresh results from the previous ones. */
  const [searches, setSearches] = useState(0);
  const [error, setError] = useState('');

  const search = async (event?: Event) => {
    event?.preventDefault();
    setError('');
    try {
      const tail = await api<{ records: AuditRecord[] }>(token, 'GET', `audit/tail?n=${query.scan}`);
      setScanned(tail.records.length);
      setRecords(tail.records.filter((r) => matches(r, query)).reverse());
      setSearches((n) => n + 1);
    } catch (e) {
      setError(describeError(e));
    }
  };
  useEffect(() => {
    api<Verify>(token, 'GET', 'audit/verify').then(setVerify, (e) => setError(describeError(e)));
    void search();
  }, [token]);

  const field = (name: keyof Query, label: string, type = 'text') => (
    <label>
      {label}
      <input
        name={name}
        type={type}
        value={query[name]}
        onInput={(e) => setQuery({ ...query, [name]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );
  return (
    <section>
      <div class={`verify ${verify ? (verify.ok ? 'ok' : 'broken') : ''}`} data-testid="audit-verify">
        {verify === null
          ? 'Verifying the audit chain…'
          : verify.ok
            ? `Chain verified: ${verify.events} records, ${verify.checkpoints} signed checkpoints (last at seq ${verify.lastCheckpointSeq}).`
            : `Chain verification FAILED${verify.seq ? ` at seq ${verify.seq}` : ''}: ${verify.reason ?? 'see custos audit verify'}.`}
      </div>
      <form class="search" onSubmit={search}>
        {field('identity', 'Identity')}
        {field('task', 'Task')}
        {field('path', 'Path')}
        {field('action', 'Action')}
        <label>
          Decision
          <select
            name="decision"
            value={query.decision}
            onChange={(e) => setQuery({ ...query, decision: (e.target as HTMLSelectElement).value })}
          >
            {['', 'allow', 'deny', 'error'].map((d) => (
              <option key={d} value={d}>
                {d || 'any'}
              </option>
            ))}
          </select>
        </label>
        {field('since', 'Since', 'datetime-local')}
        {field('until', 'Until', 'datetime-local')}
        <label>
          Newest records to search
          <select
            name="scan"
            value={query.scan}
            onChange={(e) => setQuery({ ...query, scan: (e.target as HTMLSelectElement).value })}
          >
            {['500', '2000', '9999'].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          Search
        </button>
      </form>
      {error && <p class="error">{error}</p>}
      {records && (
        <p class="muted" data-testid="audit-count" data-searches={searches}>
          {records.length} matching of the newest {scanned} records
        </p>
      )}
      <table class="audit">
        <thead>
          <tr>
            <th>seq</th>
            <th>time</th>
            <th>identity</th>
            <th>task</th>
            <th>action</th>
            <th>path</th>
            <th>decision</th>
            <th>status</th>
          </tr>
        </thead>
        <tbody>
          {records?.map((r) => (
            <tr key={r.seq} class={`decision-${r.event.decision ?? 'none'}`} data-seq={r.seq}>
              <td>{r.seq}</td>
              <td>{r.ts}</td>
              <td class="v">
                {r.event.auth?.identity ?? r.event.auth?.display_name ?? r.event.details?.refused_task?.identity ?? ''}
              </td>
              <td>
                <code>{r.event.auth?.task_id ?? ''}</code>
                {r.event.details?.refused_task?.task_id && (
                  <span class="muted">
                    {' '}
                    refused: <code>{r.event.details.refused_task.task_id}</code>
                  </span>
                )}
              </td>
              <td>{r.event.request ? `${r.event.request.action ?? ''} ${r.event.request.method}` : r.event.kind}</td>
              <td class="v">{r.event.request?.path ?? r.event.request?.route ?? ''}</td>
              <td>{r.event.decision ?? r.event.type}</td>
              <td>
                {r.event.status ?? ''} {r.event.error_code ?? ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
