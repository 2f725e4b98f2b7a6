/** A task as `GET /v1/tasks` shows it (the fields the console uses). */
export interface Task {
  id: string;
  parent_id: string | null;
  chain: string[];
  role: string;
  sub: string;
  scope: string;
  labels: Record<string, string>;
  state: 'active' | 'ended' | 'revoked' | 'expired';
  created_time: string;
  expire_time: string;
  via: string;
}

/** An approved access request in force on a task (docs/jit.md): the scope it adds, until when. */
export interface Elevation {
  id: string;
  scope: string;
  expires_at?: string;
  children?: boolean;
}

/**
 * Draws a task tree as nested boxes joined by lines (CSS only). Every string
 * — role, identity, scope, labels — came from an operator or an agent and is
 * rendered as text. A task that is no longer active is drawn grey.
 */
export function TaskTree(props: {
  task: Task;
  children: ReadonlyMap<string, Task[]>;
  elevations: ReadonlyMap<string, Elevation[]>;
  onRevoke: (task: Task) => void;
}) {
  const { task } = props;
  const elevated = task.state === 'active' ? (props.elevations.get(task.id) ?? []) : [];
  const kids = props.children.get(task.id) ?? [];
  return (
    <li>
      <div class={`task-node state-${task.state}`} data-task-id={task.id} data-state={task.state}>
        <div class="task-head">
          <code title={task.id}>{task.id}</code>
          <span class={`badge ${task.state}`}>{task.state}</span>
        </div>
        <div class="task-line">
          <span class="k">role</span> {task.role} <span class="k">identity</span> <span class="v">{task.sub}</span>
        </div>
        <div class="task-line">
          <span class="k">scope</span> <span class="v">{task.scope}</span>
        </div>
        {Object.keys(task.labels).length > 0 && (
          <div class="task-line labels">
            {Object.entries(task.labels).map(([k, v]) => (
              <span class="label" key={k}>
                {k}={v}
              </span>
            ))}
          </div>
        )}
        {elevated.map((e) => (
          <div class="task-line elevation" key={e.id} data-elevation={e.id}>
            <span class="k">elevated</span> <span class="v">{e.scope}</span>
            {e.expires_at ? ` until ${e.expires_at}` : ''}
            {e.children ? ' (and its children)' : ''}
          </div>
        ))}
        <div class="task-line small">
          via {task.via} · expires {task.expire_time}
        </div>
        {task.state === 'active' && (
          <button type="button" class="danger small" data-testid="revoke-task" onClick={() => props.onRevoke(task)}>
            Revoke subtree
          </button>
        )}
      </div>
      {kids.length > 0 && (
        <ul>
          {kids.map((kid) => (
            <TaskTree
              key={kid.id}
              task={kid}
              children={props.children}
              elevations={props.elevations}
              onRevoke={props.onRevoke}
            />
          ))}
        </ul>
      )}
    </li>
  );
}
