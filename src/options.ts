/**
 * The options contract, generated from `advisor/options.py` by
 * `python scripts/options_ts.py`: do not edit (tests/test_options.py fails when
 * it is stale).
 */

/**
 * A single-choice option.
 */
export interface IChoiceOption {
  default: string;
  label: string;
  choices: string[];
}

/**
 * A multiple-choice option.
 */
export interface IMultiChoiceOption {
  default: string[];
  label: string;
  choices: string[];
}

/**
 * An integer option with a range.
 */
export interface IRangeOption {
  default: number;
  label: string;
  min: number;
  max: number;
}

/**
 * An integer option with a range that may be left unset (null).
 */
export interface ICountOption {
  default: number | null;
  label: string;
  min: number;
  max: number;
}

/**
 * An on/off option.
 */
export interface IFlagOption {
  default: boolean;
  label: string;
}

/**
 * A free-text option.
 */
export interface ITextOption {
  default: string;
  label: string;
}

/**
 * The analysis options (REST names).
 */
export interface IAnalysisOptions {
  cann_version: string;
  torch_version: string;
  analysis_dimensions: string[];
  advisor_analyze_processes: number;
  disable_profiling_comparison: boolean;
  disable_affinity_api: boolean;
}

/**
 * The schema of `IAnalysisOptions` served by `GET api/options`.
 */
export interface IOptionsSchema {
  cann_version: IChoiceOption;
  torch_version: IChoiceOption;
  analysis_dimensions: IMultiChoiceOption;
  advisor_analyze_processes: IRangeOption;
  disable_profiling_comparison: IFlagOption;
  disable_affinity_api: IFlagOption;
}

/**
 * The job parameters: where the reports go, their language and the training log read beside the profile, top-level fields of a task.
 */
export interface IJobParameters {
  output_path: string;
  language: string;
  training_log: string;
  devices: number | null;
  seq_length: number | null;
}

/**
 * The schema of `IJobParameters` served by `GET api/options`.
 */
export interface IJobSchema {
  output_path: ITextOption;
  language: IChoiceOption;
  training_log: ITextOption;
  devices: ICountOption;
  seq_length: ICountOption;
}
