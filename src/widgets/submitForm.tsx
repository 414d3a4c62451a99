import { TranslationBundle } from '@jupyterlab/translation';
import {
  caretDownIcon,
  caretRightIcon,
  HTMLSelect,
  InputGroup
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { AdvisorClient, describeError } from '../request';
import {
  IAnalysisOptions,
  IChoiceOption,
  InputKind,
  IOptionsReply,
  IRangeOption,
  ISubmitRequest,
  ITask,
  SourceKind
} from '../tokens';
import {
  checkDimensions,
  checkOptionalCount,
  checkOutputPath,
  checkPathSyntax,
  checkProcesses,
  schemaDefaults,
  IPathCheckState,
  submitBlockReason,
  versionChoices
} from '../validation';
import { languageForLocale, ReportLanguage } from '../settings';
import { Switch } from './common';

/**
 * Delay between the last keystroke and the `api/inspect` request.
 */
export const INSPECT_DEBOUNCE_MS = 400;

/**
 * The state of a path check.
 */
export type IPathCheck = IPathCheckState;

/**
 * Check a path as the user types: syntax at once, then `api/inspect` (debounced). `input` says
 * what the field takes: profiling data (or a training log alone), or only a training log.
 */
export function usePathCheck(
  client: AdvisorClient,
  source: SourceKind,
  path: string,
  trans: TranslationBundle,
  enabled = true,
  language: ReportLanguage = 'en',
  input: InputKind = 'profile'
): IPathCheck {
  const trimmed = path.trim();
  const key = `${source}\n${trimmed}`;
  const [state, setState] = React.useState<IPathCheck & { key: string }>({
    status: 'idle',
    message: '',
    key: ''
  });

  React.useEffect(() => {
    if (!enabled) {
      return;
    }
    if (!trimmed) {
      setState({ status: 'idle', message: '', key });
      return;
    }
    const syntax = checkPathSyntax(source, trimmed, trans);
    if (syntax) {
      setState({ status: 'error', message: syntax, key });
      return;
    }
    setState({ status: 'checking', message: trans.__('Checking…'), key });
    let cancelled = false;
    const timer = window.setTimeout(() => {
      (input === 'training_log'
        ? client.inspectTrainingLog(trimmed, language)
        : client.inspect(source, trimmed, language)
      )
        .then(reply => {
          if (cancelled) {
            return;
          }
          if (reply.ok) {
            setState({
              status: 'ok',
              message: reply.summary || trans.__('Profiling data found'),
              resolved: reply.path,
              versionHints: reply.version_hints,
              kind: reply.kind,
              key
            });
          } else {
            setState({
              status: 'error',
              message: reply.message || trans.__('This path cannot be used.'),
              key
            });
          }
        })
        .catch(error => {
          if (!cancelled) {
            setState({ status: 'error', message: describeError(error), key });
          }
        });
    }, INSPECT_DEBOUNCE_MS);
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [key, enabled, language, input]);

  if (!enabled || !trimmed) {
    return { status: 'idle', message: '' };
  }
  if (state.key !== key) {
    // The input changed and the effect has not run yet: never report a stale result.
    return { status: 'checking', message: trans.__('Checking…') };
  }
  return {
    status: state.status,
    message: state.message,
    resolved: state.resolved,
    versionHints: state.versionHints,
    kind: state.kind
  };
}

/**
 * The label of an analysis dimension (`advisor/options.py` DIMENSIONS); an unknown one as it is.
 */
export function dimensionLabel(
  dimension: string,
  trans: TranslationBundle
): string {
  switch (dimension) {
    case 'computation':
      return trans.__('Computation');
    case 'communication':
      return trans.__('Communication');
    case 'schedule':
      return trans.__('Schedule');
    case 'memory':
      return trans.__('Memory');
    case 'dataloader':
      return trans.__('Data loading');
    case 'training':
      return trans.__('Training');
    default:
      return dimension;
  }
}

/**
 * Source select, path input and the validation message under it.
 */
function DataInput(props: {
  name: 'data' | 'compare';
  sources: SourceKind[];
  source: SourceKind;
  path: string;
  check: IPathCheck;
  onSource: (source: SourceKind) => void;
  onPath: (path: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans, name } = props;
  const compare = name === 'compare';
  const sourceId = `jp-pa-${name}-source`;
  const pathId = `jp-pa-${name}-path`;
  const messageId = `jp-pa-${name}-validation`;
  const sourceLabel = (source: SourceKind) => {
    switch (source) {
      case 'local':
        return trans.__('Local');
      case 'obs':
        return trans.__('OBS');
      default:
        return String(source);
    }
  };
  return (
    <div className="jp-pa-data-input" data-input={name}>
      <div className="jp-pa-field">
        <label htmlFor={sourceId}>{trans.__('Source')}</label>
        <HTMLSelect
          id={sourceId}
          className="jp-pa-source"
          aria-label={
            compare ? trans.__('Compared data source') : trans.__('Data source')
          }
          value={props.source}
          onChange={event =>
            props.onSource(event.currentTarget.value as SourceKind)
          }
          options={props.sources.map(source => ({
            value: source,
            label: sourceLabel(source)
          }))}
        />
      </div>
      <div className="jp-pa-field jp-pa-field-grow">
        <label htmlFor={pathId}>{trans.__('Path')}</label>
        <InputGroup
          id={pathId}
          type="text"
          className="jp-pa-path"
          aria-label={
            compare
              ? trans.__('Compared profiling data path')
              : trans.__('Profiling data path')
          }
          aria-describedby={messageId}
          aria-invalid={props.check.status === 'error'}
          placeholder={trans.__(
            'e.g. %1',
            props.source === 'obs'
              ? 'obs://bucket/profiling_dir1'
              : './profiling_dir1'
          )}
          spellCheck={false}
          autoComplete="off"
          value={props.path}
          onChange={event => props.onPath(event.currentTarget.value)}
        />
        <div
          id={messageId}
          className={`jp-pa-validation jp-pa-mod-${props.check.status}`}
          data-status={props.check.status}
          aria-live="polite"
        >
          {props.check.message}
        </div>
      </div>
    </div>
  );
}

/**
 * A whole-number field of the training log (devices, sequence length): empty takes the value from
 * the log.
 */
interface ICountField {
  id: string;
  label: string;
  value: string;
  error: string | null;
  range: Pick<IRangeOption, 'min' | 'max'>;
  onChange: (value: string) => void;
}

function CountInput(
  props: ICountField & { trans: TranslationBundle }
): JSX.Element {
  return (
    <div className="jp-pa-field">
      <label htmlFor={props.id}>{props.label}</label>
      <InputGroup
        id={props.id}
        type="number"
        aria-label={props.label}
        aria-invalid={props.error !== null}
        min={props.range.min}
        max={props.range.max}
        step={1}
        placeholder={props.trans.__('From the log')}
        value={props.value}
        onChange={event => props.onChange(event.currentTarget.value)}
      />
      {props.error && (
        <div
          id={`${props.id}-validation`}
          className="jp-pa-validation jp-pa-mod-error"
          data-status="error"
          role="alert"
        >
          {props.error}
        </div>
      )}
    </div>
  );
}

/**
 * The optional training log beside the profiling data (no path field when the data path is the log
 * itself), and, once a log is given, the devices and sequence length the throughput needs where the
 * log does not state them.
 */
function TrainingLogInput(props: {
  showPath: boolean;
  path: string;
  check: IPathCheck;
  onPath: (path: string) => void;
  /**
   * The devices and sequence length, shown once a log is given (empty when none is).
   */
  counts: ReadonlyArray<ICountField>;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  return (
    <fieldset className="jp-pa-section jp-pa-training">
      <legend>{trans.__('Training Log')}</legend>
      {props.showPath && (
        <div className="jp-pa-field jp-pa-field-grow">
          <label htmlFor="jp-pa-training-log">{trans.__('Log path')}</label>
          <InputGroup
            id="jp-pa-training-log"
            type="text"
            className="jp-pa-path"
            aria-label={trans.__('Training log path')}
            aria-describedby="jp-pa-training-log-validation"
            aria-invalid={props.check.status === 'error'}
            placeholder={trans.__(
              'Optional, e.g. %1',
              './output/trainer_log.jsonl'
            )}
            spellCheck={false}
            autoComplete="off"
            value={props.path}
            onChange={event => props.onPath(event.currentTarget.value)}
          />
          <div
            id="jp-pa-training-log-validation"
            className={`jp-pa-validation jp-pa-mod-${props.check.status}`}
            data-status={props.check.status}
            aria-live="polite"
          >
            {props.check.message ||
              trans.__(
                'A LLaMA-Factory trainer_log.jsonl, Megatron/MindSpeed output or HuggingFace trainer_state.json: throughput, loss and anomalies beside the profile.'
              )}
          </div>
        </div>
      )}
      {props.counts.length > 0 && (
        <div className="jp-pa-training-counts">
          {props.counts.map(field => (
            <CountInput key={field.id} {...field} trans={trans} />
          ))}
          <div className="jp-pa-hint" id="jp-pa-training-note">
            {trans.__(
              'Used where the log does not state them: the throughput per device needs both.'
            )}
          </div>
        </div>
      )}
    </fieldset>
  );
}

/**
 * Properties of the submit form.
 */
export interface ISubmitFormProps {
  client: AdvisorClient;
  trans: TranslationBundle;
  /**
   * Called with the created task after a successful submission.
   */
  onSubmitted: (task: ITask) => void;
  /**
   * The report language to ask for (read at submission: the setting may change meanwhile).
   */
  reportLanguage?: () => 'en' | 'zh';
  /**
   * JupyterLab's UI language (`translator.languageCode`): the language of the path checks' answers.
   */
  lang?: string;
}

/**
 * The Submit tab: profiling data, optional baseline, advanced settings.
 */
export function SubmitForm(props: ISubmitFormProps): JSX.Element {
  const { client, trans } = props;

  const [schema, setSchema] = React.useState<IOptionsReply | null>(null);
  const [schemaError, setSchemaError] = React.useState<string | null>(null);
  const [schemaAttempt, setSchemaAttempt] = React.useState(0);

  const [source, setSource] = React.useState<SourceKind>('local');
  const [path, setPath] = React.useState('');
  const [compare, setCompare] = React.useState(false);
  const [compareSource, setCompareSource] = React.useState<SourceKind>('local');
  const [comparePath, setComparePath] = React.useState('');
  const [advanced, setAdvanced] = React.useState(false);
  const [options, setOptions] = React.useState<IAnalysisOptions | null>(null);
  const [outputPath, setOutputPath] = React.useState('');
  const [processes, setProcesses] = React.useState('');
  const [trainingLog, setTrainingLog] = React.useState('');
  const [devices, setDevices] = React.useState('');
  const [seqLength, setSeqLength] = React.useState('');
  const [submitting, setSubmitting] = React.useState(false);
  const [submitError, setSubmitError] = React.useState<string | null>(null);

  React.useEffect(() => {
    let cancelled = false;
    setSchemaError(null);
    client
      .options()
      .then(reply => {
        if (cancelled) {
          return;
        }
        setSchema(reply);
        const defaults = schemaDefaults(reply.options);
        setOptions(defaults);
        setProcesses(String(defaults.advisor_analyze_processes));
        setOutputPath(reply.job.output_path.default);
      })
      .catch(error => {
        if (!cancelled) {
          setSchemaError(describeError(error));
        }
      });
    return () => {
      cancelled = true;
    };
  }, [client, schemaAttempt]);

  const uiLanguage = languageForLocale(props.lang);
  const dataCheck = usePathCheck(client, source, path, trans, true, uiLanguage);
  const compareCheck = usePathCheck(
    client,
    compareSource,
    comparePath,
    trans,
    compare,
    uiLanguage
  );

  // A training log given as the data path is analysed alone: no second log beside it.
  const dataIsLog =
    dataCheck.status === 'ok' && dataCheck.kind === 'training_log';
  const trainingCheck = usePathCheck(
    client,
    'local',
    trainingLog,
    trans,
    !dataIsLog,
    uiLanguage,
    'training_log'
  );
  const logGiven = dataIsLog || trainingLog.trim() !== '';
  const devicesError =
    schema && logGiven
      ? checkOptionalCount(devices, schema.job.devices, trans)
      : null;
  const seqLengthError =
    schema && logGiven
      ? checkOptionalCount(seqLength, schema.job.seq_length, trans)
      : null;

  const sources: SourceKind[] =
    schema && schema.sources.length > 0 ? schema.sources : ['local', 'obs'];

  const processesError =
    schema && advanced
      ? checkProcesses(
          processes,
          schema.options.advisor_analyze_processes,
          trans
        )
      : null;
  const dimensionsError =
    options && advanced
      ? checkDimensions(options.analysis_dimensions, trans)
      : null;

  const outputError = options
    ? checkOutputPath(
        outputPath.trim() || (schema?.job.output_path.default ?? ''),
        {
          data: [path, dataCheck.resolved ?? ''],
          compare: compare ? [comparePath, compareCheck.resolved ?? ''] : null
        },
        trans
      )
    : null;

  const blockReason = submitBlockReason(
    {
      optionsLoaded: schema !== null && options !== null,
      optionsError: schemaError,
      data: dataCheck,
      compare: compare ? compareCheck : null,
      trainingLog: dataIsLog ? null : trainingCheck,
      trainingError: devicesError ?? seqLengthError,
      advancedError: dimensionsError ?? processesError ?? outputError,
      submitting
    },
    trans
  );
  const valid = blockReason === null && schema !== null && options !== null;
  // The CANN/torch hints name Ascend software: hidden (and not sent) once the path check says the
  // data is something else, a PyTorch profiler trace or a training log.
  const hintsApply = !(
    dataCheck.status === 'ok' && dataCheck.versionHints === false
  );
  const versionNote = hintsApply
    ? trans.__(
        'The CANN and torch versions apply to Ascend data only, where the data records none.'
      )
    : dataIsLog
      ? trans.__(
          'The data is a training log: the CANN and torch versions do not apply to it.'
        )
      : trans.__(
          'The data is a PyTorch profiler trace: the CANN and torch versions do not apply to it.'
        );

  const versionOptions = (option: IChoiceOption) =>
    versionChoices(option).map(value => ({
      value,
      label: value === '' ? trans.__('Detect from the data') : value
    }));

  // The version hints, by option and label; each element's id is `jp-pa-<option with dashes>`.
  const versionHints: ReadonlyArray<
    ['cann_version' | 'torch_version', string]
  > = [
    ['cann_version', trans.__('CANN version')],
    ['torch_version', trans.__('Torch version')]
  ];

  const update = (patch: Partial<IAnalysisOptions>) => {
    setOptions(current => (current ? { ...current, ...patch } : current));
  };

  const toggleDimension = (dimension: string, checked: boolean) => {
    setOptions(current => {
      if (!current || !schema) {
        return current;
      }
      const chosen = new Set(current.analysis_dimensions);
      if (checked) {
        chosen.add(dimension);
      } else {
        chosen.delete(dimension);
      }
      return {
        ...current,
        analysis_dimensions: schema.options.analysis_dimensions.choices.filter(
          d => chosen.has(d)
        )
      };
    });
  };

  // The training log and its counts, as the request's job parameters (only those given).
  const trainingRequest = (): Partial<ISubmitRequest> => {
    if (!logGiven) {
      return {};
    }
    return {
      ...(dataIsLog ? {} : { training_log: trainingLog.trim() }),
      ...(devices.trim() ? { devices: Number(devices.trim()) } : {}),
      ...(seqLength.trim() ? { seq_length: Number(seqLength.trim()) } : {})
    };
  };

  const onSubmit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!valid || submitting || !schema || !options) {
      return;
    }
    const defaults = schemaDefaults(schema.options);
    const chosen: IAnalysisOptions = advanced
      ? {
          ...options,
          advisor_analyze_processes: Number(processes.trim()),
          ...(hintsApply
            ? {}
            : {
                cann_version: defaults.cann_version,
                torch_version: defaults.torch_version
              })
        }
      : defaults;
    const request: ISubmitRequest = {
      source,
      path: path.trim(),
      compare: compare
        ? { source: compareSource, path: comparePath.trim() }
        : null,
      options: chosen,
      output_path: advanced
        ? outputPath.trim()
        : schema.job.output_path.default,
      ...trainingRequest(),
      ...(props.reportLanguage ? { language: props.reportLanguage() } : {})
    };
    setSubmitting(true);
    setSubmitError(null);
    try {
      const task = await client.submit(request);
      props.onSubmitted(task);
    } catch (error) {
      setSubmitError(describeError(error));
    } finally {
      setSubmitting(false);
    }
  };

  const range = schema?.options.advisor_analyze_processes;

  return (
    <form
      className="jp-pa-form"
      aria-label={trans.__('Submit an analysis')}
      onSubmit={onSubmit}
      noValidate
    >
      <fieldset className="jp-pa-section">
        <legend>{trans.__('Profiling Data')}</legend>
        <DataInput
          name="data"
          sources={sources}
          source={source}
          path={path}
          check={dataCheck}
          onSource={setSource}
          onPath={setPath}
          trans={trans}
        />
      </fieldset>

      <Switch
        name="compare"
        label={trans.__('Compared Profiling Data')}
        checked={compare}
        onChange={setCompare}
      />
      {compare && (
        <fieldset className="jp-pa-section jp-pa-compare">
          <legend>{trans.__('Baseline to compare with')}</legend>
          <DataInput
            name="compare"
            sources={sources}
            source={compareSource}
            path={comparePath}
            check={compareCheck}
            onSource={setCompareSource}
            onPath={setComparePath}
            trans={trans}
          />
        </fieldset>
      )}

      {schema && (
        <TrainingLogInput
          showPath={!dataIsLog}
          path={trainingLog}
          check={trainingCheck}
          onPath={setTrainingLog}
          counts={
            logGiven
              ? [
                  {
                    id: 'jp-pa-devices',
                    label: trans.__('Devices'),
                    value: devices,
                    error: devicesError,
                    range: schema.job.devices,
                    onChange: setDevices
                  },
                  {
                    id: 'jp-pa-seq-length',
                    label: trans.__('Sequence length'),
                    value: seqLength,
                    error: seqLengthError,
                    range: schema.job.seq_length,
                    onChange: setSeqLength
                  }
                ]
              : []
          }
          trans={trans}
        />
      )}

      <section className="jp-pa-section jp-pa-advanced">
        {/* One title for the section: it is also the button that opens it. */}
        <h3 className="jp-pa-section-title">
          <button
            type="button"
            className="jp-pa-disclosure"
            id="jp-pa-advanced-toggle"
            aria-expanded={advanced}
            aria-controls="jp-pa-advanced-body"
            onClick={() => setAdvanced(open => !open)}
          >
            {advanced ? (
              <caretDownIcon.react tag="span" className="jp-pa-caret" />
            ) : (
              <caretRightIcon.react tag="span" className="jp-pa-caret" />
            )}
            {trans.__('Advanced Settings')}
          </button>
        </h3>
        {advanced && schema && options && range && (
          <div
            className="jp-pa-grid"
            id="jp-pa-advanced-body"
            role="group"
            aria-labelledby="jp-pa-advanced-toggle"
          >
            <span className="jp-pa-grid-label" />
            <div className="jp-pa-hint" id="jp-pa-version-note">
              {versionNote}
            </div>
            {hintsApply &&
              versionHints.map(([name, label]) => (
                <React.Fragment key={name}>
                  <label htmlFor={`jp-pa-${name.replace('_', '-')}`}>
                    {label}
                  </label>
                  <HTMLSelect
                    id={`jp-pa-${name.replace('_', '-')}`}
                    aria-label={label}
                    aria-describedby="jp-pa-version-note"
                    value={options[name]}
                    onChange={event =>
                      update({ [name]: event.currentTarget.value })
                    }
                    options={versionOptions(schema.options[name])}
                  />
                </React.Fragment>
              ))}

            <span className="jp-pa-grid-label" id="jp-pa-dimensions-label">
              {trans.__('Analysis dimensions')}
            </span>
            <div
              className="jp-pa-dimensions"
              role="group"
              aria-labelledby="jp-pa-dimensions-label"
            >
              {schema.options.analysis_dimensions.choices.map(dimension => (
                <label key={dimension} className="jp-pa-checkbox">
                  <input
                    type="checkbox"
                    value={dimension}
                    checked={options.analysis_dimensions.includes(dimension)}
                    onChange={event =>
                      toggleDimension(dimension, event.currentTarget.checked)
                    }
                  />
                  <span className="jp-pa-dimension-name">
                    {dimensionLabel(dimension, trans)}
                  </span>
                </label>
              ))}
              {dimensionsError && (
                <div className="jp-pa-validation jp-pa-mod-error" role="alert">
                  {dimensionsError}
                </div>
              )}
            </div>

            <label htmlFor="jp-pa-processes">
              {trans.__('Analysis processes')}
            </label>
            <div>
              <InputGroup
                id="jp-pa-processes"
                type="number"
                className="jp-pa-processes"
                aria-label={trans.__('Analysis processes')}
                aria-invalid={processesError !== null}
                min={range.min}
                max={range.max}
                step={1}
                value={processes}
                onChange={event => setProcesses(event.currentTarget.value)}
              />
              {processesError && (
                <div
                  className="jp-pa-validation jp-pa-mod-error"
                  data-status="error"
                  role="alert"
                >
                  {processesError}
                </div>
              )}
            </div>

            <span className="jp-pa-grid-label" />
            <label className="jp-pa-checkbox">
              <input
                type="checkbox"
                checked={options.disable_profiling_comparison}
                onChange={event =>
                  update({
                    disable_profiling_comparison: event.currentTarget.checked
                  })
                }
              />
              {trans.__('Disable profiling comparison')}
            </label>

            <span className="jp-pa-grid-label" />
            <label className="jp-pa-checkbox">
              <input
                type="checkbox"
                checked={options.disable_affinity_api}
                onChange={event =>
                  update({ disable_affinity_api: event.currentTarget.checked })
                }
              />
              {trans.__('Disable affinity API check')}
            </label>

            <label htmlFor="jp-pa-output-path">{trans.__('Output path')}</label>
            <InputGroup
              id="jp-pa-output-path"
              type="text"
              aria-label={trans.__('Output path')}
              placeholder={trans.__(
                'Default: %1',
                schema.job.output_path.default
              )}
              spellCheck={false}
              autoComplete="off"
              aria-invalid={outputError !== null}
              value={outputPath}
              onChange={event => setOutputPath(event.currentTarget.value)}
            />
            {outputError && (
              <>
                <span className="jp-pa-grid-label" />
                <div
                  id="jp-pa-output-validation"
                  className="jp-pa-validation jp-pa-mod-error"
                  data-status="error"
                  role="alert"
                >
                  {outputError}
                </div>
              </>
            )}
          </div>
        )}
      </section>

      {schemaError && (
        <div className="jp-pa-error" role="alert">
          {trans.__('Could not load the analysis options: %1', schemaError)}{' '}
          <button
            type="button"
            className="jp-mod-styled jp-mod-reject"
            onClick={() => setSchemaAttempt(n => n + 1)}
          >
            {trans.__('Retry')}
          </button>
        </div>
      )}
      {submitError && (
        <div className="jp-pa-error jp-pa-submit-error" role="alert">
          {submitError}
        </div>
      )}

      <div className="jp-pa-actions">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-pa-submit"
          aria-label={trans.__('Submit')}
          aria-describedby="jp-pa-submit-reason"
          disabled={!valid || submitting}
        >
          {submitting ? trans.__('Submitting…') : trans.__('Submit')}
        </button>
        <span
          id="jp-pa-submit-reason"
          className="jp-pa-submit-reason"
          role="status"
        >
          {blockReason ?? ''}
        </span>
      </div>
    </form>
  );
}
