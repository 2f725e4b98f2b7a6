import { useEffect, useState } from 'preact/hooks';
import { api, describeError } from '../api.js';
import { Confirm } from '../confirm.js';
import type { PageProps } from '../page-props.js';
import { type Elevation, type Task, TaskTree } from '../task-tree.js';

const PAGE = 500;

/**
 * Live task trees: the tasks the operator may read (`GET /v1/tasks`), kept
 * current from the event stream — `task.created` adds the new task,
 * `task.ended` / `task.revoked` re-read the ended subtree, which turns grey.
 */
export function TasksPage({ token, subscribe }: PageProps) {
  const [tasks, setTasks] = useState<ReadonlyMap<string, Task>>(new Map());
  const [error, setError] = useState('');
  const [showEnded, setShowEnded] = useState(true);
  const [revoking, setRevoking] = useState<Task | null>(null);
  const [elevations, setElevations] = useState<ReadonlyMap<string, Elevation[]>>(new Map());

  // Elevations in force (approved access requests), by task. A server
  // without access requests, or a token that may not list them, shows none.
  const loadElevations = () =>
    api<{ requests: (Elevation & { task_id: string })[] }>(token, 'GET', 'requests?status=approved').then(
      (r) => {
        const next = new Map<string, Elevation[]>();
        for (const e of r.requests) next.set(e.task_id, [...(next.get(e.task_id) ?? []), e]);
        setElevations(next);
      },
      () => setElevations(new Map()),
    );

  const merge = (list: Task[]) =>
    setTasks((current) => {
      const next = new Map(current);
      for (const task of list) next.set(task.id, task);
      return next;
    });

  useEffect(() => {
    let cursor: string | undefined;
    const load = async () => {
      // A few pages at most: the tree shows the newest work, not the whole history.
      for (let i = 0; i < 4; i++) {
        const page = await api<{ tasks: Task[]; next_cursor?: string }>(
          token,
          'GET',
          `tasks?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        merge(page.tasks);
        cursor = page.next_cursor;
        if (!cursor) return;
      }
    };
    load().catch((e) => setError(describeError(e)));
    void loadElevations();
    return subscribe((event) => {
      if (event.type.startsWith('request.')) {
        void loadElevations();
        return;
      }
      const id = typeof event.data.task_id === 'string' ? event.data.task_id : undefined;
      if (!id || !/^tsk_[A-Za-z0-9_-]{22}$/.test(id)) return;
      if (event.type === 'task.created') {
        api<Task>(token, 'GET', `tasks/${id}`).then((task) => merge([task]), ignoreGone);
      } else if (event.type === 'task.ended' || event.type === 'task.revoked') {
        api<{ tasks: Task[] }>(token, 'GET', `tasks/${id}/tree`).then((tree) => merge(tree.tasks), ignoreGone);
      }
    });
  }, [token]);

  const revoke = async (task: Task) => {
    setRevoking(null);
    try {
      const ended = await api<Task>(token, 'POST', `tasks/${task.id}/revoke`);
      merge([ended]);
      const tree = await api<{ tasks: Task[] }>(token, 'GET', `tasks/${task.id}/tree`);
      merge(tree.tasks);
    } catch (e) {
      setError(describeError(e));
    }
  };

  const visible = [...tasks.values()].filter((t) => showEnded || t.state === 'active');
  const byId = new Map(visible.map((t) => [t.id, t]));
  const children = new Map<string, Task[]>();
  const roots: Task[] = [];
  for (const task of visible.sort((a, b) => a.created_time.localeCompare(b.created_time))) {
    if (task.parent_id && byId.has(task.parent_id)) {
      const list = children.get(task.parent_id) ?? [];
      list.push(task);
      children.set(task.parent_id, list);
    } else roots.push(task);
  }
  roots.reverse();
  const descendants = (task: Task) => [...tasks.values()].filter((t) => t.id !== task.id && t.chain.includes(task.id));

  return (
    <section>
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={showEnded} onChange={() => setShowEnded(!showEnded)} /> show ended and revoked
          tasks
        </label>
        <span class="muted">
          {roots.length} trees, {visible.length} tasks
        </span>
      </div>
      {error && <p class="error">{error}</p>}
      {roots.length === 0 && <p class="muted">No tasks yet. New ones appear here as they start.</p>}
      <ul class="tree" data-testid="task-trees">
        {roots.map((root) => (
          <TaskTree key={root.id} task={root} children={children} elevations={elevations} onRevoke={setRevoking} />
        ))}
      </ul>
      {revoking && (
        <Confirm action="Revoke" onConfirm={() => revoke(revoking)} onCancel={() => setRevoking(null)}>
          Revoke task <code>{revoking.id}</code> ({revoking.role}) and its {descendants(revoking).length} descendant
          task(s)? Every token of the subtree stops working at once, and its leases are revoked.
        </Confirm>
      )}
    </section>
  );
}

/** A task reaped or not readable any more: nothing to show. */
const ignoreGone = () => undefined;
