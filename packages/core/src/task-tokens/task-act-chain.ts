import type { TaskActor, TaskTokenClaims } from './task-token-claims.js';

/**
 * The `act` of a child minted by `parent`: the parent becomes the newest
 * (outermost) actor and carries the parent's own chain inside it.
 */
export function delegationActor(parent: Pick<TaskTokenClaims, 'sub' | 'task_id' | 'act'>): TaskActor {
  return {
    sub: parent.sub,
    task_id: parent.task_id,
    ...(parent.act === undefined ? {} : { act: parent.act }),
  };
}

/**
 * Task ids from the root task down to this one, as the audit event's
 * `task_chain` wants them. Actors without a `task_id` (none that custos
 * mints) are skipped.
 */
export function actChain(claims: Pick<TaskTokenClaims, 'task_id' | 'act'>): string[] {
  const chain: string[] = [];
  for (let a = claims.act; a !== undefined; a = a.act) if (a.task_id !== undefined) chain.push(a.task_id);
  chain.reverse();
  chain.push(claims.task_id);
  return chain;
}

/** Subjects from the root task's holder down to this token's `sub`. */
export function actorSubjects(claims: Pick<TaskTokenClaims, 'sub' | 'act'>): string[] {
  const subjects: string[] = [];
  for (let a = claims.act; a !== undefined; a = a.act) subjects.push(a.sub);
  subjects.reverse();
  subjects.push(claims.sub);
  return subjects;
}
