import { nullTranslator } from '@jupyterlab/translation';

import {
  checkDimensions,
  checkOptionalCount,
  checkOutputPath,
  checkPathSyntax,
  checkProcesses,
  schemaDefaults,
  locationParts,
  submitBlockReason,
  versionChoices
} from '../validation';
import { OPTIONS_REPLY } from './utils';

const trans = nullTranslator.load('jupyterlab_performance_advisor');

describe('checkPathSyntax', () => {
  it('requires a path', () => {
    expect(checkPathSyntax('local', '   ', trans)).toBe(
      'Enter the path of the profiling data'
    );
  });

  it('leaves local paths to the server', () => {
    expect(checkPathSyntax('local', './profiling_dir1', trans)).toBeNull();
    expect(checkPathSyntax('local', '/abs/dir', trans)).toBeNull();
  });

  it('accepts obs:// and s3:// object storage paths', () => {
    expect(
      checkPathSyntax('obs', 'obs://bucket/profiling_dir1', trans)
    ).toBeNull();
    expect(checkPathSyntax('obs', 'S3://bucket/x', trans)).toBeNull();
  });

  it('refuses other OBS paths', () => {
    expect(checkPathSyntax('obs', './profiling_dir1', trans)).toBe(
      'OBS paths must start with obs:// or s3://'
    );
    expect(checkPathSyntax('obs', 'http://bucket/x', trans)).toBe(
      'OBS paths must start with obs:// or s3://'
    );
    expect(checkPathSyntax('obs', 'obs://', trans)).toBe(
      'Add the bucket name after obs://'
    );
    expect(checkPathSyntax('obs', 'obs:///x', trans)).toBe(
      'Add the bucket name after obs://'
    );
  });
});

describe('locationParts', () => {
  it('normalises local paths and object-storage URLs', () => {
    expect(locationParts('./a//b/./c/')).toEqual(['.', 'a', 'b', 'c']);
    expect(locationParts('a/x/../b')).toEqual(['.', 'a', 'b']);
    expect(locationParts('.')).toEqual(['.']);
    expect(locationParts('/data/run')).toEqual(['/', 'data', 'run']);
    expect(locationParts('S3://bkt/jobs/run1/')).toEqual([
      'obs',
      'bkt',
      'jobs',
      'run1'
    ]);
    expect(locationParts('../elsewhere')).toBeNull();
  });
});

describe('checkOutputPath', () => {
  const INSIDE_DATA =
    'The output folder is inside the profiling data, which is read-only: choose a folder outside it.';
  const INSIDE_BASELINE =
    'The output folder is inside the compared profiling data, which is read-only: choose a folder outside it.';
  const data = (...paths: string[]) => ({ data: paths, compare: null });

  it('refuses the input itself and any folder inside it', () => {
    for (const output of [
      './profiling_dir1',
      'profiling_dir1/reports',
      './profiling_dir1/a/b/../c'
    ]) {
      expect(checkOutputPath(output, data('./profiling_dir1'), trans)).toBe(
        INSIDE_DATA
      );
    }
    // The server root as input: every relative output is inside it.
    expect(
      checkOutputPath('performance_advisor_reports', data('.'), trans)
    ).toBe(INSIDE_DATA);
    expect(
      checkOutputPath('obs://bkt/run/out', data('s3://bkt/run'), trans)
    ).toBe(INSIDE_DATA);
  });

  it('follows the path the server resolved, and the baseline', () => {
    expect(checkOutputPath('./real/out', data('./link', './real'), trans)).toBe(
      INSIDE_DATA
    );
    expect(
      checkOutputPath(
        './base/out',
        { data: ['./run'], compare: ['./base', ''] },
        trans
      )
    ).toBe(INSIDE_BASELINE);
  });

  it('leaves other folders alone, and what only the server can place', () => {
    const inputs = { data: ['./run', ''], compare: ['./base'] };
    for (const output of [
      'performance_advisor_reports',
      './run2',
      './',
      '/abs/run',
      '../run',
      'obs://bkt/run'
    ]) {
      expect(checkOutputPath(output, inputs, trans)).toBeNull();
    }
  });
});

describe('checkProcesses', () => {
  const range = OPTIONS_REPLY.options.advisor_analyze_processes; // 1..4

  it('accepts whole numbers in range', () => {
    expect(checkProcesses('1', range, trans)).toBeNull();
    expect(checkProcesses(' 4 ', range, trans)).toBeNull();
  });

  it('refuses numbers out of range', () => {
    expect(checkProcesses('0', range, trans)).toBe(
      'Enter a number from 1 to 4.'
    );
    expect(checkProcesses('5', range, trans)).toBe(
      'Enter a number from 1 to 4.'
    );
  });

  it('refuses non-integers', () => {
    expect(checkProcesses('', range, trans)).toBe('Enter a whole number.');
    expect(checkProcesses('2.5', range, trans)).toBe('Enter a whole number.');
    expect(checkProcesses('two', range, trans)).toBe('Enter a whole number.');
  });
});

describe('checkOptionalCount', () => {
  const range = OPTIONS_REPLY.job.devices; // 1..1,000,000

  it('leaves an empty field to the log', () => {
    expect(checkOptionalCount('', range, trans)).toBeNull();
    expect(checkOptionalCount('  ', range, trans)).toBeNull();
  });

  it('checks a given number as a whole number in range', () => {
    expect(checkOptionalCount('8', range, trans)).toBeNull();
    expect(checkOptionalCount('1000000', range, trans)).toBeNull();
    expect(checkOptionalCount('0', range, trans)).toBe(
      'Enter a number from 1 to 1000000.'
    );
    expect(checkOptionalCount('8.5', range, trans)).toBe(
      'Enter a whole number.'
    );
    expect(checkOptionalCount('eight', range, trans)).toBe(
      'Enter a whole number.'
    );
  });
});

describe('checkDimensions', () => {
  it('requires at least one dimension', () => {
    expect(checkDimensions([], trans)).toBe('Select at least one dimension.');
    expect(checkDimensions(['memory'], trans)).toBeNull();
  });
});

describe('schemaDefaults', () => {
  it('takes every default from the server schema', () => {
    const options = schemaDefaults(OPTIONS_REPLY.options);
    expect(options).toEqual({
      cann_version: '7.0.0',
      torch_version: '2.1.0',
      analysis_dimensions: ['computation', 'memory'],
      advisor_analyze_processes: 2,
      disable_profiling_comparison: false,
      disable_affinity_api: false
    });
    // A copy: the form's changes leave the schema as served.
    options.analysis_dimensions.pop();
    expect(OPTIONS_REPLY.options.analysis_dimensions.default).toEqual([
      'computation',
      'memory'
    ]);
    expect(schemaDefaults(OPTIONS_REPLY.job)).toEqual({
      output_path: 'performance_advisor_reports',
      language: 'en',
      training_log: '',
      devices: null,
      seq_length: null
    });
  });
});

describe('versionChoices', () => {
  it('puts "detect from the data" first when the server defaults to it', () => {
    expect(
      versionChoices({ default: '', choices: ['7.0.0', '8.0.RC1'] })
    ).toEqual(['', '7.0.0', '8.0.RC1']);
    expect(
      versionChoices({ default: '8.0.RC1', choices: ['8.0.RC1', ''] })
    ).toEqual(['', '8.0.RC1']);
  });

  it('offers only the versions while the server needs one', () => {
    expect(
      versionChoices({ default: '8.0.RC1', choices: ['7.0.0', '8.0.RC1'] })
    ).toEqual(['7.0.0', '8.0.RC1']);
  });
});

describe('submitBlockReason', () => {
  const ok = { status: 'ok' as const, message: '2 ranks' };
  const base = {
    optionsLoaded: true,
    optionsError: null,
    data: ok,
    compare: null,
    trainingLog: { status: 'idle' as const, message: '' },
    trainingError: null,
    advancedError: null,
    submitting: false
  };

  it('is null when Submit may be pressed', () => {
    expect(submitBlockReason(base, trans)).toBeNull();
    // No training log (the field is optional), a checked one, or none asked for (the data is one).
    expect(
      submitBlockReason(
        { ...base, trainingLog: { ...ok, kind: 'training_log' } },
        trans
      )
    ).toBeNull();
    expect(submitBlockReason({ ...base, trainingLog: null }, trans)).toBeNull();
    expect(submitBlockReason({ ...base, compare: ok }, trans)).toBeNull();
    expect(
      submitBlockReason(
        { ...base, data: { status: 'idle', message: '' }, submitting: true },
        trans
      )
    ).toBeNull();
  });

  it('says what is missing, first things first', () => {
    const reason = (patch: object) =>
      submitBlockReason({ ...base, ...patch }, trans);
    expect(reason({ optionsLoaded: false })).toBe(
      'Loading the analysis options…'
    );
    expect(reason({ optionsLoaded: false, optionsError: 'HTTP 500' })).toBe(
      'The analysis options could not be loaded.'
    );
    expect(reason({ data: { status: 'idle', message: '' } })).toBe(
      'Enter the path of the profiling data'
    );
    expect(reason({ data: { status: 'checking', message: 'Checking…' } })).toBe(
      'Checking the path…'
    );
    expect(
      reason({ data: { status: 'error', message: 'no credentials' } })
    ).toBe('no credentials');
    expect(reason({ compare: { status: 'idle', message: '' } })).toBe(
      'Enter the path of the compared profiling data'
    );
    expect(reason({ compare: { status: 'checking', message: '' } })).toBe(
      'Checking the compared path…'
    );
    expect(reason({ compare: { status: 'error', message: 'not found' } })).toBe(
      'Compared profiling data: not found'
    );
    expect(
      reason({ trainingLog: { status: 'checking', message: 'Checking…' } })
    ).toBe('Checking the training log…');
    expect(
      reason({
        trainingLog: {
          status: 'error',
          message: './notes.txt: no LLaMA-Factory record found'
        }
      })
    ).toBe('Training log: ./notes.txt: no LLaMA-Factory record found');
    expect(reason({ trainingError: 'Enter a whole number.' })).toBe(
      'Enter a whole number.'
    );
    // The baseline comes before the training log, which comes before Advanced Settings.
    expect(
      reason({
        compare: { status: 'idle', message: '' },
        trainingLog: { status: 'error', message: 'not a log' }
      })
    ).toBe('Enter the path of the compared profiling data');
    expect(
      reason({
        trainingLog: { status: 'error', message: 'not a log' },
        advancedError: 'Enter a whole number.'
      })
    ).toBe('Training log: not a log');
    expect(reason({ advancedError: 'Enter a whole number.' })).toBe(
      'Enter a whole number.'
    );
    expect(
      reason({
        data: { status: 'idle', message: '' },
        advancedError: 'Enter a whole number.'
      })
    ).toBe('Enter the path of the profiling data');
  });
});
