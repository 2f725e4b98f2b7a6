import { issueTaskToken, type TaskSigningKeys } from '../task-tokens/index.js';
import type { TaskRecord, TaskTokenMinter } from '../tasks/index.js';

/** Mints task tokens for task records with this deployment's signing keys. */
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
        { keys, issuer: options.issuer, audience: options.audience },
      );
      return token;
    },
  };
}
