import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, describeError, encodePath } from '../api.js';
import type { PageProps } from '../page-props.js';

interface Metadata {
  path: string;
  current_version: number;
  oldest_version: number;
  max_versions: number;
  cas_required: boolean;
  updated_time: string;
  updated_by: string;
  versions: Record<
    string,
    { version: number; created_time: string; created_by: string; deletion_time: string | null; destroyed: boolean }
  >;
  stages?: { current: number; previous: number | null; pending: number | null; previous_retire_time: string | null };
}
interface Rotation {
  rotator?: { type?: string };
  every_ms?: number | null;
  cron?: string | null;
  next_at: number | null;
  last_rotation: { version: number; time: string } | null;
  last_error: string | null;
}

/**
 * Secrets: browse paths (`list`), see versions, rotation state and the
 * version pinned readers still get — never a value, until the operator
 * presses Reveal: that is an ordinary `GET /v1/secrets/data/…`, allowed only
 * if the operator's policy lets it `read` the path, and audited like any read.
 */
export function SecretsPage({ token }: PageProps) {
  const [prefix, setPrefix] = useState('kv/');
  const [keys, setKeys] = useState<string[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    setKeys(null);
    api<{ keys: string[] }>(token, 'GET', `secrets/list/${encodePath(prefix)}`).then(
      (r) => setKeys(r.keys),
      (e) => (e instanceof ApiError && e.status === 404 ? setKeys([]) : setError(describeError(e))),
    );
  }, [token, prefix]);
  const up = prefix.replace(/[^/]+\/$/, '');
  return (
    <section class="secrets">
      <div class="browser">
        <div class="crumbs">
          <code>/{prefix}</code>{' '}
          {prefix !== 'kv/' && (
            <button type="button" class="small" onClick={() => setPrefix(up)}>
              up
            </button>
          )}
        </div>
        {error && <p class="error">{error}</p>}
        {keys?.length === 0 && <p class="muted">Nothing here.</p>}
        <ul class="keys">
          {keys?.map((key) => (
            <li key={key}>
              <button
                type="button"
                class={`link ${selected === prefix + key ? 'current' : ''}`}
                data-key={key}
                onClick={() => (key.endsWith('/') ? setPrefix(prefix + key) : setSelected(prefix + key))}
              >
                {key}
              </button>
            </li>
          ))}
        </ul>
      </div>
      {selected && <SecretDetail key={selected} token={token} path={selected} />}
    </section>
  );
}

function SecretDetail({ token, path }: { token: string; path: string }) {
  const [meta, setMeta] = useState<Metadata | null>(null);
  const [rotation, setRotation] = useState<Rotation | null | 'none'>(null);
  const [values, setValues] = useState<Record<string, string> | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api<Metadata>(token, 'GET', `secrets/metadata/${encodePath(path)}`).then(setMeta, (e) =>
      setError(describeError(e)),
    );
    api<Rotation>(token, 'GET', `rotation/${encodePath(path)}`).then(setRotation, () => setRotation('none'));
  }, [token, path]);
  const reveal = async () => {
    try {
      setValues((await api<{ data: Record<string, string> }>(token, 'GET', `secrets/data/${encodePath(path)}`)).data);
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <div class="detail" data-secret-path={path}>
      <h2 class="v">{path}</h2>
      {error && <p class="error">{error}</p>}
      {meta && (
        <dl>
          <dt>current version</dt>
          <dd>{meta.stages?.current ?? meta.current_version}</dd>
          <dt>versions kept</dt>
          <dd>
            {meta.oldest_version}–{meta.current_version} (max {meta.max_versions})
            {meta.cas_required ? ', CAS required' : ''}
          </dd>
          <dt>updated</dt>
          <dd>
            {meta.updated_time} by <span class="v">{meta.updated_by}</span>
          </dd>
          <dt>rotation</dt>
          <dd>
            {rotation === null
              ? '…'
              : rotation === 'none'
                ? 'no rotation policy'
                : `${rotation.rotator?.type ?? 'rotator'}; next ${rotation.next_at ? new Date(rotation.next_at).toISOString() : 'not scheduled'}; last ${rotation.last_rotation ? `v${rotation.last_rotation.version} at ${rotation.last_rotation.time}` : 'never'}${rotation.last_error ? `; last error ${rotation.last_error}` : ''}`}
          </dd>
          <dt>pins</dt>
          <dd>
            {meta.stages
              ? `task trees pinned to v${meta.stages.previous ?? meta.stages.current} keep reading it` +
                (meta.stages.previous_retire_time ? ` until ${meta.stages.previous_retire_time}` : '') +
                (meta.stages.pending ? `; v${meta.stages.pending} pending (not yet applied)` : '')
              : 'a task tree reads the version it first saw (pinned at its root task) until it ends'}
          </dd>
        </dl>
      )}
      {meta && (
        <table>
          <thead>
            <tr>
              <th>version</th>
              <th>created</th>
              <th>by</th>
              <th>state</th>
            </tr>
          </thead>
          <tbody>
            {Object.values(meta.versions)
              .sort((a, b) => b.version - a.version)
              .map((v) => (
                <tr key={v.version}>
                  <td>{v.version}</td>
                  <td>{v.created_time}</td>
                  <td class="v">{v.created_by}</td>
                  <td>{v.destroyed ? 'destroyed' : v.deletion_time ? `deleted ${v.deletion_time}` : 'live'}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
      <div class="values">
        {values ? (
          <>
            <dl data-testid="secret-values">
              {Object.entries(values).map(([k, v]) => (
                <Fragment key={k}>
                  <dt>{k}</dt>
                  <dd class="v secret-value">{v}</dd>
                </Fragment>
              ))}
            </dl>
            <button type="button" onClick={() => setValues(null)}>
              Hide
            </button>
          </>
        ) : (
          <>
            <p class="muted">Values are hidden. Revealing one is an audited read under your token's policy.</p>
            <button type="button" class="primary" data-testid="reveal" onClick={reveal}>
              Reveal
            </button>
          </>
        )}
      </div>
    </div>
  );
}
