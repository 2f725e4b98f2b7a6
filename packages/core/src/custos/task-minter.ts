import { issueTaskToken, type TaskSigningKeys } from '../task-tokens/index.js';
import type { TaskRecord, TaskTokenMinter } from '../tasks/index.js';

/** Mints task tokens for task records with this deployment's signing keys (`aud`: the task's resource, or `audience`). */
export function createTaskMinter(
  keys: TaskSigningKeys,
  options: { issuer: string; audience: string },
): TaskTokenMinter {
  return {
    mint: async (task: TaskRecord, exp: number) => {
      const { token } = await issueTaskToken(
        {
          sub: task.sub,
          task_id: task.id,
          parent_task_id: task.parent_id,
          depth: task.depth,
          role: task.role,
          scope: task.scope,
          ...(task.act ? { act: task.act } : {}),
          ...(task.jkt ? { cnf: { jkt: task.jkt } } : {}),
          exp,
        },
        // A task delegated for a registered resource is for that resource
        // alone (RFC 8707): not custos's audience as well, so its token is
        // refused by custos's own API and proxy (see docs/task-tokens.md).
        { keys, issuer: options.issuer, audience: task.audience ?? options.audience },
      );
      return token;
    },
  };
}
