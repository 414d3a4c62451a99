"""The options contract: one typed model from which the CLI, the REST validation and the UI schema come."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields

import pytest

from advisor.errors import OptionError
from advisor.options import (
    DEFAULT_PROCESSES_CAP,
    DIMENSIONS,
    REPORTS_DIR,
    AnalysisOptions,
    Deployment,
    JobParameters,
    add_cli_arguments,
    cli_args,
    default_process_count,
    from_cli,
    options_schema,
    parse_model,
    parse_options,
    specs,
)


def test_defaults_match_the_schema():
    options = parse_options({})
    schema = options_schema()
    for name, value in options.to_json().items():
        assert schema[name]["default"] == value, name
    assert options == AnalysisOptions()


def test_values_are_normalised():
    options = parse_options(
        {
            "cann_version": "8.0.rc1",
            "analysis_dimensions": ["memory", "computation", "memory"],
            "advisor_analyze_processes": "4",
        }
    )
    assert options.cann_version == "8.0.RC1"
    assert options.analysis_dimensions == ("computation", "memory")  # canonical order, no repeats
    assert options.advisor_analyze_processes == 4
    assert parse_model(JobParameters, {"output_path": "  out  ", "language": "ZH"}) == JobParameters(
        "out", "zh"
    )


def test_cli_arguments_carry_every_option():
    options = parse_options(
        {
            "analysis_dimensions": "schedule,memory",
            "disable_profiling_comparison": True,
            "disable_affinity_api": True,
        }
    )
    assert options.to_cli_args() == [
        "--dimensions",
        "schedule,memory",
        "--processes",
        str(default_process_count()),  # the usable cores, capped
        "--no-comparison",
        "--no-affinity-api",
    ]  # fmt: skip  (no version hint given: none passed, the CLI detects them from the data)
    hinted = parse_options({"cann_version": "7.0.0", "torch_version": "2.1.0"})
    assert hinted.to_cli_args()[:4] == ["--cann-version", "7.0.0", "--torch-version", "2.1.0"]


def test_versions_default_to_detect_from_the_data():
    # "" is the default and the first choice (the form lists it first); no version the user never gave.
    schema = options_schema()
    for name in ("cann_version", "torch_version"):
        assert schema[name]["default"] == "" and schema[name]["choices"][0] == ""
        assert getattr(AnalysisOptions(), name) == "" and getattr(parse_options({name: ""}), name) == ""
    with pytest.raises(OptionError, match=re.escape('one of "" (detect from the data), 6.3.RC2')):
        parse_options({"cann_version": "5.0"})


def test_reports_go_to_their_own_folder_by_default():
    assert JobParameters().output_path == REPORTS_DIR == "performance_advisor_reports"
    assert options_schema(JobParameters)["output_path"]["default"] == REPORTS_DIR
    assert parse_model(JobParameters, {"output_path": ""}).output_path == REPORTS_DIR  # empty: the default


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"advisor_analyze_processes": 9}, "between 1 and 8"),
        ({"advisor_analyze_processes": True}, "must be an integer"),
        ({"advisor_analyze_processes": "many"}, "must be an integer"),
        ({"cann_version": 8}, "cann_version must be one of"),
        ({"analysis_dimensions": "gpu"}, "analysis_dimensions must be one of"),
        ({"analysis_dimensions": {"a": 1}}, "must be a list"),
        ({"disable_affinity_api": 1}, "true or false"),
        ({"output_path": "out"}, "unknown option(s): 'output_path'"),  # a job parameter
        ({"nope": 1}, "unknown option(s): 'nope'"),
    ],
)
def test_bad_values_name_the_option(raw, message):
    with pytest.raises(OptionError, match=None) as error:
        parse_options(raw)
    assert message in str(error.value)


def test_every_dimension_is_offered():
    assert options_schema()["analysis_dimensions"]["choices"] == list(DIMENSIONS)


def test_job_parameters_are_not_analysis_options():
    assert not set(specs(AnalysisOptions)) & set(specs(JobParameters))
    # The training log and the job's facts it may not state are inputs beside the profile (issue 21).
    assert set(specs(JobParameters)) == {"output_path", "language", "training_log", "devices", "seq_length"}
    with pytest.raises(OptionError, match="output_path must be a string"):
        parse_model(JobParameters, {"output_path": 3})
    with pytest.raises(OptionError, match="language must be one of en, zh"):
        parse_model(JobParameters, {"language": "fr"})


def test_every_field_has_a_cli_flag_and_a_schema_entry():
    parser = argparse.ArgumentParser()
    for model in (AnalysisOptions, JobParameters):
        add_cli_arguments(parser, model)
        assert list(options_schema(model)) == [f.name for f in fields(model)]
        assert all(entry["label"] for entry in options_schema(model).values())
    flags = {action.dest: action.option_strings for action in parser._actions}
    assert flags["advisor_analyze_processes"] == ["--processes"]
    assert flags["disable_profiling_comparison"] == ["--no-comparison"]
    assert flags["output_path"] == ["--output"]


def test_cli_flags_round_trip_through_the_parser():
    # What the server's runner passes is what the CLI reads back, for every option and parameter.
    chosen = AnalysisOptions("7.0.0", "2.1.0", ("schedule", "memory"), 3, True, True)
    job = JobParameters("reports", "zh")
    deployment = Deployment("tcp://10.0.0.5:8786")
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser, AnalysisOptions)
    add_cli_arguments(parser, JobParameters)
    add_cli_arguments(parser, Deployment)
    args = parser.parse_args([*chosen.to_cli_args(), *cli_args(job), *cli_args(deployment)])
    assert from_cli(args, AnalysisOptions) == chosen and from_cli(args, JobParameters) == job
    assert from_cli(args, Deployment) == deployment
    defaults = parser.parse_args([])
    assert from_cli(defaults, AnalysisOptions) == AnalysisOptions()
    assert from_cli(defaults, JobParameters) == JobParameters()
    # No scheduler: no flag at all, and the CLI reads back None (the local pool).
    assert cli_args(Deployment()) == [] and from_cli(defaults, Deployment) == Deployment(None)


def test_the_scheduler_is_not_a_rest_option():
    # A REST request must not point the server's analyses at a host of its choosing.
    assert "dask_scheduler_address" not in specs(AnalysisOptions) | specs(JobParameters)
    with pytest.raises(OptionError, match="unknown option"):
        parse_options({"dask_scheduler_address": "tcp://evil:8786"})


def test_default_processes_are_the_usable_cores_capped(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)))
    assert default_process_count() == DEFAULT_PROCESSES_CAP
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {3})  # a container given one core
    assert default_process_count() == 1
