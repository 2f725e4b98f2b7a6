import type { ActiveElevation } from '../access-requests/access-request-types.js';
import type { Role } from '../tasks/role-types.js';
import type { TaskTokenSubject } from '../tasks/task-service.js';
import type { TokenEntry } from '../tokens/token-types.js';

/**
 * Who is calling: an operator token (a human or a service), or a task token
 * (an agent doing one unit of work). Both go through the same policy check;
 * a task's grant is additionally cut down to its scope.
 */
export type Principal =
  | { readonly kind: 'operator'; readonly token: TokenEntry }
  | {
      readonly kind: 'task';
      readonly task: TaskTokenSubject;
      readonly role: Role;
      /** The task's labels (`--label k=v`), from its record: Cedar sees them as `principal.labels` ("k=v" strings). */
      readonly labels: Readonly<Record<string, string>>;
      /**
       * Approved just-in-time elevations in force for this task (its own,
       * and its ancestors' approved for children), checked against storage
       * at authentication (docs/jit.md). Absent or empty: none.
       */
      readonly elevations?: readonly ActiveElevation[];
    };

/**
 * A short, non-secret and *stable* name for `created_by`, `updated_by`,
 * `ended_by` and lease owners: `token:<accessor>` or `task:<id>`. Never the
 * display name, which the token's creator chose and anyone may repeat.
 */
export function principalName(principal: Principal): string {
  return principal.kind === 'operator' ? `token:${principal.token.accessor}` : `task:${principal.task.task_id}`;
}
