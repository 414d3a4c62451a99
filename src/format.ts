import { TranslationBundle } from '@jupyterlab/translation';

import { durationMs } from './model';
import { ITaskSummary } from './tokens';

/**
 * Formatting that follows JupyterLab's UI language (`translator.languageCode`, e.g. `zh-CN`),
 * not the browser's: a Chinese JupyterLab in an English browser shows Chinese dates.
 */

/**
 * `Intl` formatter options of the Submitted column.
 */
const DATE_TIME: Intl.DateTimeFormatOptions = {
  dateStyle: 'medium',
  timeStyle: 'medium'
};

/**
 * A locale `Intl` accepts: JupyterLab's code, or the runtime's default for a code it does not know.
 */
function intlLocale(lang: string | undefined): string | undefined {
  if (!lang) {
    return undefined;
  }
  try {
    return Intl.DateTimeFormat.supportedLocalesOf(lang).length > 0
      ? lang
      : undefined;
  } catch {
    // A malformed tag (RangeError).
    return undefined;
  }
}

/**
 * An ISO timestamp as a local date and time in the UI language; "—" when missing.
 */
export function formatDateTime(iso: string | null, lang?: string): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return new Intl.DateTimeFormat(intlLocale(lang), DATE_TIME).format(date);
}

/**
 * The local time of day (hours and minutes, with seconds when asked) of an ISO timestamp.
 */
export function formatClock(
  iso: string,
  lang?: string,
  seconds = false
): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return new Intl.DateTimeFormat(intlLocale(lang), {
    hour: '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
    hourCycle: 'h23'
  }).format(date);
}

/**
 * A duration in whole units, through the catalogue: "42 s", "1 min 12 s", "2 h 5 min"
 * ("42秒", "1分12秒", "2小时5分" in Chinese).
 */
export function formatDuration(ms: number, trans: TranslationBundle): string {
  const total = Math.floor(Math.max(0, ms) / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) {
    return trans.__('%1 h %2 min', hours, minutes);
  }
  if (minutes > 0) {
    return trans.__('%1 min %2 s', minutes, seconds);
  }
  return trans.__('%1 s', seconds);
}

/**
 * The Duration column: from `started` to `finished` (or to `now` while running); "—" before the
 * task started.
 */
export function duration(
  task: ITaskSummary,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const ms = durationMs(task, now);
  return ms === null ? '—' : formatDuration(ms, trans);
}

/**
 * How long a task waited for a free slot, for the Duration cell's tooltip (the Duration itself
 * counts the analysis only); `undefined` when it did not wait a full second.
 */
export function queuedFor(
  task: ITaskSummary,
  trans: TranslationBundle,
  now: number = Date.now()
): string | undefined {
  const created = Date.parse(task.created);
  const started = task.started ? Date.parse(task.started) : now;
  if (Number.isNaN(created) || Number.isNaN(started)) {
    return undefined;
  }
  const waited = started - created;
  return waited >= 1000
    ? trans.__('Waited %1 in the queue', formatDuration(waited, trans))
    : undefined;
}

/**
 * The progress stages the analysis reports (advisor/engine.py, advisor/storage), in the UI
 * language. A stage not listed here is shown as the analysis wrote it.
 */
export function stageLabel(stage: string, trans: TranslationBundle): string {
  let match = /^reading rank (\d+)\/(\d+)$/.exec(stage);
  if (match) {
    return trans.__('Reading rank %1 of %2', match[1], match[2]);
  }
  match = /^downloading (\d+)\/(\d+) files, (.+) of (.+)$/.exec(stage);
  if (match) {
    return trans.__(
      'Downloading %1 of %2 files (%3 of %4)',
      match[1],
      match[2],
      match[3],
      match[4]
    );
  }
  match = /^listing (\S+)$/.exec(stage);
  if (match) {
    return trans.__('Listing %1', match[1]);
  }
  switch (stage) {
    case 'starting':
      return trans.__('Starting');
    case 'running checks':
      return trans.__('Running checks');
    case 'writing report':
    case 'done':
      // "done" comes after the files are written, just before the result: still writing.
      return trans.__('Writing the report');
    default:
      return stage;
  }
}

/**
 * The last meaningful part of a path as typed: `./runs/job1/` and `obs://b/job1` give `job1`.
 * Mirrors `path_title` in advisor/server/models.py.
 */
export function pathTitle(path: string): string {
  const rest = path.includes('://') ? path.split('://', 2)[1] : path;
  const parts = rest
    .split(/[/\\]/)
    .filter(part => part !== '' && part !== '.' && part !== '..');
  return parts.length > 0 ? parts[parts.length - 1] : path;
}

/**
 * The title of a report tab: the profile's name (the server's `title`, which names "." after its
 * folder), " vs <baseline>" for a comparison, and the time the task was submitted when another
 * open tab already has that title (to the second when the minute is taken too).
 *
 * @param taken - The titles of the other open report tabs.
 */
export function reportTabTitle(
  task: ITaskSummary,
  taken: ReadonlyArray<string>,
  trans: TranslationBundle,
  lang?: string
): string {
  const name = task.title || pathTitle(task.path);
  const base = task.compare
    ? trans.__('%1 vs %2', name, pathTitle(task.compare.path))
    : name;
  for (const candidate of [
    base,
    trans.__('%1 (%2)', base, formatClock(task.created, lang)),
    trans.__('%1 (%2)', base, formatClock(task.created, lang, true))
  ]) {
    if (!taken.includes(candidate)) {
      return candidate;
    }
  }
  return trans.__('%1 (%2)', base, task.id);
}
