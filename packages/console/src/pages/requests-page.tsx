import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, describeError } from '../api.js';
import type { PageProps } from '../page-props.js';

/** An access request (docs/jit.md), the fields the console shows. */
interface AccessRequest {
  id: string;
  status: string;
  task_id: string;
  chain: string[];
  identity: string;
  role: string;
  scope: string;
  reason: string;
  ttl_seconds: number;
  children?: boolean;
  approvals_required: number;
  approvals: { by: string; at: string }[];
  created_at: string;
  decided_at?: string;
  decided_by?: string;
  expires_at?: string;
  deny_reason?: string;
}

const STATUSES = ['pending', 'approved', 'denied', 'revoked', 'expired', 'all'] as const;

/**
 * Access requests: approve (optionally narrower — a smaller scope or a
 * shorter TTL; the server refuses anything wider), deny with a reason.
 * Refreshed on every `request.*` event.
 */
export function RequestsPage({ token, subscribe }: PageProps) {
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('pending');
  const [requests, setRequests] = useState<AccessRequest[] | null>(null);
  const [error, setError] = useState('');
  const [unavailable, setUnavailable] = useState(false);

  const load = () =>
    api<{ requests: AccessRequest[] }>(token, 'GET', `requests?status=${status}`).then(
      (r) => {
        setRequests(r.requests);
        setError('');
      },
      (e) => {
        if (e instanceof ApiError && e.status === 404) setUnavailable(true);
        else setError(describeError(e));
      },
    );

  useEffect(() => {
    void load();
    return subscribe((event) => {
      if (event.type.startsWith('request.')) void load();
    });
  }, [token, status]);

  if (unavailable) return <p class="muted">This server does not offer access requests.</p>;
  return (
    <section>
      <div class="toolbar">
        <label>
          Status{' '}
          <select
            value={status}
            onChange={(e) => setStatus((e.target as HTMLSelectElement).value as (typeof STATUSES)[number])}
          >
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && <p class="error">{error}</p>}
      {requests?.length === 0 && <p class="muted">No {status === 'all' ? '' : status} requests.</p>}
      <div class="cards">
        {requests?.map((request) => (
          <RequestCard key={request.id} token={token} request={request} onDone={load} onError={setError} />
        ))}
      </div>
    </section>
  );
}

function RequestCard(props: {
  token: string;
  request: AccessRequest;
  onDone: () => void;
  onError: (message: string) => void;
}) {
  const { request } = props;
  const [scope, setScope] = useState(request.scope);
  const [ttl, setTtl] = useState('');
  const [children, setChildren] = useState(false);
  const [denyReason, setDenyReason] = useState('');
  const act = async (verb: 'approve' | 'deny' | 'revoke', body: unknown) => {
    try {
      await api(props.token, 'POST', `requests/${encodeURIComponent(request.id)}/${verb}`, body);
      props.onDone();
    } catch (e) {
      props.onError(describeError(e));
    }
  };
  const approve = () =>
    act('approve', {
      ...(scope.trim() && scope.trim() !== request.scope ? { scope: scope.trim() } : {}),
      ...(ttl.trim() ? { ttl: ttl.trim() } : {}),
      // Future children get the elevation only when the approver says so here (and the request asked for it).
      ...(children ? { children: true } : {}),
    });
  return (
    <div class={`card request status-${request.status}`} data-request-id={request.id} data-status={request.status}>
      <div class="card-head">
        <code>{request.id}</code> <span class={`badge ${request.status}`}>{request.status}</span>
      </div>
      <dl>
        <dt>scope</dt>
        <dd class="v">{request.scope}</dd>
        <dt>reason</dt>
        <dd class="v reason">{request.reason}</dd>
        <dt>identity</dt>
        <dd class="v">{request.identity}</dd>
        <dt>role</dt>
        <dd>{request.role}</dd>
        <dt>task</dt>
        <dd>
          <code>{request.task_id}</code> <span class="muted">(chain {request.chain.join(' › ')})</span>
        </dd>
        <dt>ttl</dt>
        <dd>{request.ttl_seconds}s</dd>
        <dt>approvals</dt>
        <dd>
          {request.approvals.length} of {request.approvals_required}
          {request.approvals.map((a) => ` · ${a.by} at ${a.at}`).join('')}
        </dd>
        <dt>created</dt>
        <dd>{request.created_at}</dd>
        {request.decided_by && (
          <>
            <dt>decided</dt>
            <dd>
              {request.decided_by} at {request.decided_at}
            </dd>
          </>
        )}
        {request.expires_at && (
          <>
            <dt>expires</dt>
            <dd>{request.expires_at}</dd>
          </>
        )}
        {request.deny_reason && (
          <>
            <dt>denied because</dt>
            <dd class="v">{request.deny_reason}</dd>
          </>
        )}
      </dl>
      {request.status === 'pending' && (
        <div class="actions">
          <label>
            Scope (narrow only)
            <input
              name="scope"
              value={scope}
              onInput={(e) => setScope((e.target as HTMLInputElement).value)}
              maxLength={4096}
            />
          </label>
          <label>
            TTL (shorter only, e.g. 5m)
            <input
              name="ttl"
              value={ttl}
              placeholder={`${request.ttl_seconds}s`}
              onInput={(e) => setTtl((e.target as HTMLInputElement).value)}
              maxLength={32}
            />
          </label>
          {request.children && (
            <label class="inline">
              <input type="checkbox" checked={children} onChange={() => setChildren(!children)} /> also its future
              children
            </label>
          )}
          <button type="button" class="primary" data-testid="approve" onClick={approve}>
            Approve
          </button>
          <label>
            Reason to deny
            <input
              name="deny-reason"
              value={denyReason}
              onInput={(e) => setDenyReason((e.target as HTMLInputElement).value)}
              maxLength={1024}
            />
          </label>
          <button
            type="button"
            class="danger"
            data-testid="deny"
            onClick={() => act('deny', denyReason.trim() ? { reason: denyReason.trim() } : {})}
          >
            Deny
          </button>
        </div>
      )}
      {request.status === 'approved' && (
        <div class="actions">
          <button type="button" class="danger" data-testid="revoke-request" onClick={() => act('revoke', {})}>
            Revoke elevation
          </button>
        </div>
      )}
    </div>
  );
}
