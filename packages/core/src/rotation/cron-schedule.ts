import { ValidationError } from '../errors/index.js';

/** A parsed five-field cron expression (minute hour day-of-month month day-of-week), in UTC. */
export interface CronSchedule {
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly days: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly weekdays: ReadonlySet<number>;
  /** Day-of-month and day-of-week both restricted: either matches (classic cron). */
  readonly dayOr: boolean;
}

const FIELDS = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12 },
  { min: 0, max: 7 },
] as const;

/**
 * Parses `*`, `*\/n`, `a-b`, `a-b/n` and comma lists in each of the five
 * fields (day-of-week 0 or 7 is Sunday). Names (`MON`, `JAN`) and `@hourly`
 * shortcuts are not supported: the expression is refused, never guessed.
 */
export function parseCron(expression: string): CronSchedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) throw new ValidationError('A cron expression has five fields.');
  const sets = parts.map((part, i) => parseField(part, FIELDS[i] as { min: number; max: number }));
  const weekdays = new Set([...(sets[4] as Set<number>)].map((d) => d % 7));
  return {
    minutes: sets[0] as Set<number>,
    hours: sets[1] as Set<number>,
    days: sets[2] as Set<number>,
    months: sets[3] as Set<number>,
    weekdays,
    dayOr: parts[2] !== '*' && parts[4] !== '*',
  };
}

function parseField(part: string, { min, max }: { min: number; max: number }): Set<number> {
  const values = new Set<number>();
  for (const item of part.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
    if (!match) throw new ValidationError(`Invalid cron field "${part.slice(0, 32)}".`);
    const step = match[4] ? Number(match[4]) : 1;
    const from = match[1] === '*' ? min : Number(match[2]);
    const to = match[1] === '*' ? max : match[3] ? Number(match[3]) : match[4] ? max : from;
    if (step < 1 || from < min || to > max || from > to) {
      throw new ValidationError(`Invalid cron field "${part.slice(0, 32)}".`);
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

/** The first minute strictly after `afterMs` the schedule matches (epoch ms, UTC). */
export function nextCronTime(schedule: CronSchedule, afterMs: number): number {
  const t = new Date(Math.floor(afterMs / 60_000) * 60_000 + 60_000);
  // At most about four years ahead: long enough for any satisfiable expression
  // (Feb 29). Bounded by time, not by steps: steps skip whole days and hours,
  // so a step bound let an unsatisfiable expression (`0 0 31 2 *`) walk two
  // million days — a second of blocked event loop per request.
  const end = afterMs + 4 * 366 * 86_400_000;
  while (t.getTime() <= end) {
    const dayMatch = schedule.dayOr
      ? schedule.days.has(t.getUTCDate()) || schedule.weekdays.has(t.getUTCDay())
      : schedule.days.has(t.getUTCDate()) && schedule.weekdays.has(t.getUTCDay());
    if (!schedule.months.has(t.getUTCMonth() + 1) || !dayMatch) {
      t.setUTCHours(0, 0, 0, 0);
      t.setUTCDate(t.getUTCDate() + 1);
      continue;
    }
    if (!schedule.hours.has(t.getUTCHours())) {
      t.setUTCMinutes(0, 0, 0);
      t.setUTCHours(t.getUTCHours() + 1);
      continue;
    }
    if (schedule.minutes.has(t.getUTCMinutes())) return t.getTime();
    t.setUTCMinutes(t.getUTCMinutes() + 1);
  }
  throw new ValidationError('The cron expression never matches.');
}
