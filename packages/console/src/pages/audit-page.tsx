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

interface SearchPage {
  records: AuditRecord[];
  next_before_seq?: number;
  scanned_through_seq: number;
  complete: boolean;
}

interface Query {
  identity: string;
  task: string;
  path: string;
  action: string;
  decision: string;
  since: string;
  until: string;
}
const EMPTY: Query = { identity: '', task: '', path: '', action: '', decision: '', since: '', until: '' };

/**
 * The query string of `GET /v1/audit/search` for the filled fields. The
 * time inputs are local wall-clock times: they are sent as UTC instants so
 * the server reads them as the operator meant.
 */
export function searchQuery(q: Query, beforeSeq?: number): string {
  const params = new URLSearchParams();
  for (const name of ['identity', 'task', 'path', 'action', 'decision'] as const) {
    const value = q[name].trim();
    if (value) params.set(name, value);
  }
  for (const name of ['since', 'until'] as const) {
    const at = q[name] ? new Date(q[name]) : undefined;
    if (at && !Number.isNaN(at.getTime())) params.set(name, at.toISOString());
  }
  if (beforeSeq !== undefined) params.set('before_seq', String(beforeSeq));
  return params.toString();
}

/**
 * The audit trail: the chain's verification (`GET /v1/audit/verify`) and the
 * server-side search of the whole online trail (`GET /v1/audit/search`), by
 * identity, task (a root task finds its subtree), path (exact, or a prefix
 * ending in `*`), action, decision and time, newest first, with "Load more"
 * following the server's cursor.
 */
export function AuditPage({ token }: PageProps) {
  const [verify, setVerify] = useState<Verify | null>(null);
  const [query, setQuery] = useState<Query>(EMPTY);
  /** The query the shown records answer (Load more continues it, not the edited form). */
  const [shown, setShown] = useState<Query>(EMPTY);
  const [records, setRecords] = useState<AuditRecord[] | null>(null);
  const [page, setPage] = useState<Omit<SearchPage, 'records'> | null>(null);
  /** Counts finished searches (`data-searches`), so a reader can tell fresh results from the previous ones. */
  const [searches, setSearches] = useState(0);
  const [error, setError] = useState('');

  const run = async (q: Query, before: AuditRecord[], beforeSeq?: number) => {
    setError('');
    try {
      const found = await api<SearchPage>(token, 'GET', `audit/search?${searchQuery(q, beforeSeq)}`);
      const { records: more, ...rest } = found;
      setShown(q);
      setRecords([...before, ...more]);
      setPage(rest);
      setSearches((n) => n + 1);
    } catch (e) {
      setError(describeError(e));
    }
  };
  const search = (event?: Event) => {
    event?.preventDefault();
    return run(query, []);
  };
  const loadMore = () => run(shown, records ?? [], page?.next_before_seq);
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
        <button type="submit" class="primary">
          Search
        </button>
      </form>
      {error && <p class="error">{error}</p>}
      {records && page && (
        <p class="muted" data-testid="audit-count" data-searches={searches} data-complete={String(page.complete)}>
          {records.length} matching records,{' '}
          {page.complete
            ? 'the whole online trail searched'
            : `searched down to seq ${page.scanned_through_seq} — load more to go further back`}
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
      {page?.next_before_seq !== undefined && (
        <button type="button" data-testid="audit-more" onClick={loadMore}>
          Load more
        </button>
      )}
    </section>
  );
}
