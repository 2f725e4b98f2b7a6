import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import type { PageProps } from '../page-props.js';

interface Alert {
  id: string;
  rule: string;
  severity: string;
  time: string;
  state: 'open' | 'acked';
  subject: Record<string, unknown>;
  explanation: string;
  acked_by?: string;
  actions?: { action: string; outcome: string; at: string }[];
}

/** The anomaly engine's findings, newest first; refreshed on `alert.*` events; acknowledge with `admin`. */
export function AlertsPage({ token, subscribe }: PageProps) {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [error, setError] = useState('');
  const load = () =>
    api<{ alerts: Alert[] }>(token, 'GET', 'alerts?limit=100').then(
      (r) => setAlerts(r.alerts),
      (e) => setError(describeError(e)),
    );
  useEffect(() => {
    void load();
    return subscribe((event) => {
      if (event.type.startsWith('alert.')) void load();
    });
  }, [token]);
  const ack = async (alert: Alert) => {
    try {
      await api(token, 'POST', `alerts/${encodeURIComponent(alert.id)}/ack`);
      await load();
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <section>
      {error && <p class="error">{error}</p>}
      {alerts?.length === 0 && <p class="muted">No findings.</p>}
      <div class="cards">
        {alerts?.map((alert) => (
          <div
            class={`card alert severity-${alert.severity} state-${alert.state}`}
            key={alert.id}
            data-alert-id={alert.id}
          >
            <div class="card-head">
              <span class={`badge ${alert.severity}`}>{alert.severity}</span> <strong>{alert.rule}</strong>{' '}
              <span class="muted">{alert.time}</span> <span class={`badge ${alert.state}`}>{alert.state}</span>
            </div>
            <p class="v">{alert.explanation}</p>
            <dl>
              {Object.entries(alert.subject ?? {}).map(([k, v]) => (
                <Fragment key={k}>
                  <dt>{k}</dt>
                  <dd class="v">{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
                </Fragment>
              ))}
            </dl>
            {alert.actions?.map((a) => (
              <div class="small" key={a.action + a.at}>
                {a.action}: {a.outcome} at {a.at}
              </div>
            ))}
            {alert.state === 'open' ? (
              <button type="button" onClick={() => ack(alert)}>
                Acknowledge
              </button>
            ) : (
              <span class="muted">acknowledged by {alert.acked_by}</span>
            )}
          </div>
        ))}
      </div>
    </section>
  );
}
