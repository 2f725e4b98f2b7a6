import { useEffect, useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import { Confirm } from '../confirm.js';
import type { PageProps } from '../page-props.js';

interface Lease {
  id: string;
  engine: string;
  role: string;
  username: string;
  state: string;
  task_id: string | null;
  owner?: string;
  created_time?: string;
  expire_time: string;
}

/** Dynamic credential leases grouped by the task they were issued to, with revoke. */
export function LeasesPage({ token }: PageProps) {
  const [leases, setLeases] = useState<Lease[] | null>(null);
  const [state, setState] = useState('active');
  const [error, setError] = useState('');
  const [revoking, setRevoking] = useState<Lease | null>(null);
  const load = () =>
    api<{ leases: Lease[] }>(token, 'GET', `leases?limit=1000${state ? `&state=${state}` : ''}`).then(
      (r) => setLeases(r.leases),
      (e) => setError(describeError(e)),
    );
  useEffect(() => {
    void load();
  }, [token, state]);

  const revoke = async (lease: Lease) => {
    setRevoking(null);
    try {
      await api(token, 'POST', `leases/${encodeURIComponent(lease.id)}/revoke`);
      await load();
    } catch (e) {
      setError(describeError(e));
    }
  };

  const groups = new Map<string, Lease[]>();
  for (const lease of leases ?? []) {
    const key = lease.task_id ?? '(no task — an operator token)';
    groups.set(key, [...(groups.get(key) ?? []), lease]);
  }
  return (
    <section>
      <div class="toolbar">
        <label>
          State{' '}
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            {['active', 'revoking', 'revoked', 'revoke_failed', ''].map((s) => (
              <option key={s} value={s}>
                {s || 'all'}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={load}>
          Refresh
        </button>
      </div>
      {error && <p class="error">{error}</p>}
      {leases?.length === 0 && <p class="muted">No leases.</p>}
      {[...groups].map(([task, list]) => (
        <div class="group" key={task}>
          <h2>
            task <code>{task}</code>
          </h2>
          <table>
            <thead>
              <tr>
                <th>lease</th>
                <th>engine / role</th>
                <th>user</th>
                <th>state</th>
                <th>expires</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.map((lease) => (
                <tr key={lease.id} data-lease-id={lease.id}>
                  <td>
                    <code>{lease.id}</code>
                  </td>
                  <td>
                    {lease.engine} / {lease.role}
                  </td>
                  <td class="v">{lease.username}</td>
                  <td>
                    <span class={`badge ${lease.state}`}>{lease.state}</span>
                  </td>
                  <td>{lease.expire_time}</td>
                  <td>
                    {lease.state === 'active' && (
                      <button type="button" class="danger small" onClick={() => setRevoking(lease)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
      {revoking && (
        <Confirm action="Revoke" onConfirm={() => revoke(revoking)} onCancel={() => setRevoking(null)}>
          Revoke lease <code>{revoking.id}</code>? Its database user is dropped and its sessions end.
        </Confirm>
      )}
    </section>
  );
}
