import { CustosError } from '../errors/index.js';

/**
 * One declared working window of a role: on `days` (0 = Monday … 6 =
 * Sunday), from `start` to `end` (minutes after local midnight), in the IANA
 * time zone `zone`. An `end` not after `start` runs past midnight into the
 * next day (`Fri 22:00-06:00` covers Friday night until Saturday 06:00).
 */
export interface ActiveWindow {
  readonly days: readonly number[];
  readonly start: number;
  readonly end: number;
  readonly zone: string;
}

const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
/** Enough for any real schedule; a bound so a role record cannot grow without limit. */
export const MAX_ACTIVE_WINDOWS = 16;
const WINDOW =
  /^([A-Za-z]{3})(?:-([A-Za-z]{3}))? ([0-2]\d):([0-5]\d)-([0-2]\d):([0-5]\d)(?: ([A-Za-z0-9_+/-]{1,64}))?$/;

const invalid = (detail: string) => new CustosError('CUSTOS_ERR_ACTIVE_HOURS_INVALID', detail.slice(0, 200));

function dayIndex(name: string): number {
  const i = DAY_NAMES.findIndex((d) => d.toLowerCase() === name.toLowerCase());
  if (i < 0) throw invalid(`not a day: ${name} (Mon..Sun)`);
  return i;
}

/** Whether `zone` is an IANA zone this runtime knows (Intl is the one source of zone rules: DST-correct). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses `Mon-Fri 07:00-19:00 Europe/Berlin, Sat 09:00-12:00 Europe/Berlin`:
 * comma-separated windows of a day or a day range (which may wrap, `Fri-Mon`),
 * a start and an end (`24:00` is the end of the day), and an IANA time zone
 * (default UTC). Anything else is refused with `CUSTOS_ERR_ACTIVE_HOURS_INVALID`
 * naming the part that is wrong — never silently read as "any hour".
 */
export function parseActiveHours(text: string): ActiveWindow[] {
  if (typeof text !== 'string' || text.length > 2048) throw invalid('at most 2048 characters');
  const parts = text
    .split(',')
    .map((p) => p.trim().replace(/\s+/g, ' '))
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw invalid('no window given');
  if (parts.length > MAX_ACTIVE_WINDOWS) throw invalid(`at most ${MAX_ACTIVE_WINDOWS} windows`);
  return parts.map(parseWindow);
}

function parseWindow(text: string): ActiveWindow {
  const m = WINDOW.exec(text);
  if (!m) throw invalid(`not a window: "${text.slice(0, 64)}" (e.g. Mon-Fri 07:00-19:00 Europe/Berlin)`);
  const [, from = '', to, sh = '', sm = '', eh = '', em = '', zoneText] = m;
  const first = dayIndex(from);
  const last = to === undefined ? first : dayIndex(to);
  const days: number[] = [];
  for (let d = first; ; d = (d + 1) % 7) {
    days.push(d);
    if (d === last) break;
  }
  const start = Number(sh) * 60 + Number(sm);
  const end = Number(eh) * 60 + Number(em);
  if (start >= 24 * 60 || end > 24 * 60) throw invalid(`not a time of day in "${text.slice(0, 64)}"`);
  if (start === end) throw invalid(`an empty window: "${text.slice(0, 64)}"`);
  const zone = zoneText ?? 'UTC';
  if (!isTimeZone(zone)) throw invalid(`not a time zone: ${zone}`);
  return { days, start, end, zone };
}

/**
 * Checks a stored list again (a role record is read back from storage and
 * from the API): throws `CUSTOS_ERR_ACTIVE_HOURS_INVALID` on anything malformed.
 */
export function validateActiveWindows(windows: unknown): ActiveWindow[] {
  if (!Array.isArray(windows) || windows.length > MAX_ACTIVE_WINDOWS) throw invalid('not a list of windows');
  return windows.map((w) => {
    const { days, start, end, zone } = (w ?? {}) as Partial<ActiveWindow>;
    const ok =
      Array.isArray(days) &&
      days.length > 0 &&
      days.length <= 7 &&
      days.every((d) => Number.isInteger(d) && d >= 0 && d <= 6) &&
      Number.isInteger(start) &&
      Number.isInteger(end) &&
      (start as number) >= 0 &&
      (start as number) < 1440 &&
      (end as number) >= 0 &&
      (end as number) <= 1440 &&
      start !== end &&
      typeof zone === 'string' &&
      isTimeZone(zone);
    if (!ok) throw invalid('a window is malformed');
    return { days: [...(days as number[])], start: start as number, end: end as number, zone: zone as string };
  });
}

const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** The canonical text of windows (what `custos role read` shows); parses back to the same windows. */
export function formatActiveHours(windows: readonly ActiveWindow[]): string {
  return windows
    .map((w) => {
      const first = w.days[0] ?? 0;
      const last = w.days[w.days.length - 1] ?? first;
      const days = first === last ? DAY_NAMES[first] : `${DAY_NAMES[first]}-${DAY_NAMES[last]}`;
      return `${days} ${hhmm(w.start)}-${hhmm(w.end)} ${w.zone}`;
    })
    .join(', ');
}

/**
 * UTC offsets per zone, cached per quarter hour of UTC time: every zone's
 * offset is a multiple of 15 minutes and changes (DST) only on such a
 * boundary, so one Intl call per zone per quarter hour gives every event in
 * it the right local time — the rule calls this per event.
 */
const offsets = new Map<string, { slot: number; offsetMs: number }>();
const formatters = new Map<string, Intl.DateTimeFormat>();
const QUARTER_MS = 15 * 60_000;

function offsetMs(zone: string, epochMs: number): number {
  const slot = Math.floor(epochMs / QUARTER_MS);
  const cached = offsets.get(zone);
  if (cached?.slot === slot) return cached.offsetMs;
  let format = formatters.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    if (formatters.size > 1_000) formatters.clear();
    formatters.set(zone, format);
  }
  const at = slot * QUARTER_MS;
  const p: Record<string, number> = {};
  for (const part of format.formatToParts(at)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const local = Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0);
  const value = local - at;
  if (offsets.size > 1_000) offsets.clear();
  offsets.set(zone, { slot, offsetMs: value });
  return value;
}

/** Whether `epochMs` falls in one of the windows (each judged in its own zone, DST included). */
export function withinActiveHours(windows: readonly ActiveWindow[], epochMs: number): boolean {
  for (const w of windows) {
    const local = epochMs + offsetMs(w.zone, epochMs);
    const minute = Math.floor(local / 60_000);
    const minuteOfDay = ((minute % 1440) + 1440) % 1440;
    // 1970-01-01 was a Thursday (index 3 with Monday as 0).
    const day = (((Math.floor(minute / 1440) + 3) % 7) + 7) % 7;
    if (w.start < w.end) {
      if (minuteOfDay >= w.start && minuteOfDay < w.end && w.days.includes(day)) return true;
    } else {
      // Past midnight: the evening part on a listed day, the morning part on the day after one.
      if (minuteOfDay >= w.start && w.days.includes(day)) return true;
      if (minuteOfDay < w.end && w.days.includes((day + 6) % 7)) return true;
    }
  }
  return false;
}
