import { TranslationBundle } from '@jupyterlab/translation';

import { IChoiceOption, InputKind, IRangeOption, SourceKind } from './tokens';

/**
 * Object-storage URL schemes accepted for the OBS source.
 */
export const OBS_SCHEMES = ['obs://', 's3://'];

/**
 * Client-side check of a path, before the server is asked.
 *
 * @returns A one-line reason, or `null` if the path may be sent to `api/inspect`.
 */
export function checkPathSyntax(
  source: SourceKind,
  path: string,
  trans: TranslationBundle
): string | null {
  const value = path.trim();
  if (!value) {
    return trans.__('Enter the path of the profiling data');
  }
  if (source === 'obs') {
    const lower = value.toLowerCase();
    const scheme = OBS_SCHEMES.find(s => lower.startsWith(s));
    if (!scheme) {
      return trans.__('OBS paths must start with obs:// or s3://');
    }
    if (value.length <= scheme.length || value[scheme.length] === '/') {
      return trans.__('Add the bucket name after %1', scheme);
    }
  }
  return null;
}

/**
 * A location as parts to compare, its kind first: `obs` (an object-storage URL: bucket, then the
 * key's parts; obs:// and s3:// may name one store), `/` (an absolute path) or `.` (a path relative to
 * the server root). `.` and empty parts are dropped and `..` applied; `null` for a path that climbs
 * above its start, which only the server can place.
 */
export function locationParts(path: string): string[] | null {
  const value = path.trim();
  const scheme = OBS_SCHEMES.find(s => value.toLowerCase().startsWith(s));
  const rest = scheme ? value.slice(scheme.length) : value;
  const parts = [scheme ? 'obs' : value.startsWith('/') ? '/' : '.'];
  for (const part of rest.split('/')) {
    if (part === '..') {
      if (parts.length === 1) {
        return null;
      }
      parts.pop();
    } else if (part !== '' && part !== '.') {
      parts.push(part);
    }
  }
  return parts;
}

/**
 * The paths each input is known by: as typed and, once `api/inspect` answered, as resolved (links
 * followed, relative to the server root).
 */
export interface IOutputInputs {
  data: ReadonlyArray<string>;
  compare: ReadonlyArray<string> | null;
}

/**
 * Check that the output folder is outside the profiling data (the server refuses it too, with links
 * resolved): the input is read-only.
 *
 * @returns A one-line reason, or `null` if the output is not inside an input as far as the form can tell.
 */
export function checkOutputPath(
  output: string,
  inputs: IOutputInputs,
  trans: TranslationBundle
): string | null {
  const out = locationParts(output);
  if (out === null) {
    return null;
  }
  const contains = (paths: ReadonlyArray<string>) =>
    paths.some(path => {
      const parts = path.trim() ? locationParts(path) : null;
      return (
        parts !== null &&
        parts.length <= out.length &&
        parts.every((part, i) => part === out[i])
      );
    });
  if (contains(inputs.data)) {
    return trans.__(
      'The output folder is inside the profiling data, which is read-only: choose a folder outside it.'
    );
  }
  if (inputs.compare && contains(inputs.compare)) {
    return trans.__(
      'The output folder is inside the compared profiling data, which is read-only: choose a folder outside it.'
    );
  }
  return null;
}

/**
 * Check the number of analysis processes.
 *
 * @returns A one-line reason, or `null` if valid.
 */
export function checkProcesses(
  raw: string,
  range: Pick<IRangeOption, 'min' | 'max'>,
  trans: TranslationBundle
): string | null {
  const text = raw.trim();
  const value = Number(text);
  if (!text || !Number.isInteger(value)) {
    return trans.__('Enter a whole number.');
  }
  if (value < range.min || value > range.max) {
    return trans.__('Enter a number from %1 to %2.', range.min, range.max);
  }
  return null;
}

/**
 * Check an optional whole number (the training log's devices and sequence length): empty means
 * "take it from the log".
 *
 * @returns A one-line reason, or `null` if empty or valid.
 */
export function checkOptionalCount(
  raw: string,
  range: Pick<IRangeOption, 'min' | 'max'>,
  trans: TranslationBundle
): string | null {
  return raw.trim() ? checkProcesses(raw, range, trans) : null;
}

/**
 * Check the selected analysis dimensions.
 *
 * @returns A one-line reason, or `null` if valid.
 */
export function checkDimensions(
  selected: ReadonlyArray<string>,
  trans: TranslationBundle
): string | null {
  return selected.length === 0
    ? trans.__('Select at least one dimension.')
    : null;
}

/**
 * The default values of a schema served by `GET api/options` (the analysis options,
 * or the job parameters): every field of the model, so a new option needs no edit here.
 */
export function schemaDefaults<T>(schema: {
  [K in keyof T]: { default: T[K] };
}): T {
  const values = {} as T;
  for (const name of Object.keys(schema) as (keyof T)[]) {
    const value = schema[name].default;
    values[name] = (Array.isArray(value) ? [...value] : value) as T[keyof T];
  }
  return values;
}

/**
 * The choices of a version select, in order. The empty value ("detect from the data") comes first
 * when the server offers it: as its default or among its choices.
 */
export function versionChoices(
  option: Pick<IChoiceOption, 'default' | 'choices'>
): string[] {
  const offersEmpty = option.default === '' || option.choices.includes('');
  const versions = option.choices.filter(choice => choice !== '');
  return offersEmpty ? ['', ...versions] : versions;
}

/**
 * The state of a path check, as the form shows it.
 */
export interface IPathCheckState {
  status: 'idle' | 'checking' | 'ok' | 'error';
  message: string;
  /**
   * The path as the server resolved it (`api/inspect`'s `path`), once it answered ok.
   */
  resolved?: string;
  /**
   * Whether the CANN/torch version hints apply to the data (`api/inspect`'s `version_hints`); unknown
   * (undefined) until it answered ok, and for object storage.
   */
  versionHints?: boolean;
  /**
   * What the path holds (`api/inspect`'s `kind`), once it answered ok: profiling data or a training
   * log.
   */
  kind?: InputKind;
}

/**
 * What the form knows when it decides whether Submit is enabled.
 */
export interface ISubmitState {
  /**
   * The analysis options were loaded (`GET api/options`).
   */
  optionsLoaded: boolean;
  /**
   * Why they could not be loaded, if they could not.
   */
  optionsError: string | null;
  data: IPathCheckState;
  /**
   * The baseline's check, when comparing with one.
   */
  compare: IPathCheckState | null;
  /**
   * The optional training log's check (`null` when the form has no such field: the data path is the
   * log), and the first error of its devices and sequence length.
   */
  trainingLog: IPathCheckState | null;
  trainingError: string | null;
  /**
   * The first Advanced Settings error, if any.
   */
  advancedError: string | null;
  submitting: boolean;
}

/**
 * Why Submit is disabled, shown next to it; `null` when it is enabled.
 */
export function submitBlockReason(
  state: ISubmitState,
  trans: TranslationBundle
): string | null {
  if (state.submitting) {
    return null;
  }
  if (state.optionsError !== null) {
    return trans.__('The analysis options could not be loaded.');
  }
  if (!state.optionsLoaded) {
    return trans.__('Loading the analysis options…');
  }
  const reason = (check: IPathCheckState, compare: boolean): string | null => {
    switch (check.status) {
      case 'idle':
        return compare
          ? trans.__('Enter the path of the compared profiling data')
          : trans.__('Enter the path of the profiling data');
      case 'checking':
        return compare
          ? trans.__('Checking the compared path…')
          : trans.__('Checking the path…');
      case 'error':
        return compare
          ? trans.__('Compared profiling data: %1', check.message)
          : check.message;
      default:
        return null;
    }
  };
  // The training log is optional: an empty field blocks nothing.
  const trainingReason = (check: IPathCheckState): string | null => {
    switch (check.status) {
      case 'checking':
        return trans.__('Checking the training log…');
      case 'error':
        return trans.__('Training log: %1', check.message);
      default:
        return null;
    }
  };
  return (
    reason(state.data, false) ??
    (state.compare ? reason(state.compare, true) : null) ??
    (state.trainingLog ? trainingReason(state.trainingLog) : null) ??
    state.trainingError ??
    state.advancedError
  );
}
