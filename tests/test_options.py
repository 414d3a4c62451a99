"""Analysis options: one table of choices shared by the CLI, the server and the UI."""

from __future__ import annotations

import re

import pytest

from advisor.errors import OptionError
from advisor.options import DIMENSIONS, REPORTS_DIR, AnalysisOptions, options_schema, parse_options


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
            "output_path": "  out  ",
        }
    )
    assert options.cann_version == "8.0.RC1"
    assert options.analysis_dimensions == ("computation", "memory")  # canonical order, no repeats
    assert options.advisor_analyze_processes == 4
    assert options.output_path == "out"


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
        "1",
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
    assert AnalysisOptions().output_path == REPORTS_DIR == "performance_advisor_reports"
    assert options_schema()["output_path"]["default"] == REPORTS_DIR
    assert parse_options({"output_path": ""}).output_path == REPORTS_DIR  # an empty field: the default


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
        ({"output_path": 3}, "must be a string"),
        ({"nope": 1}, "unknown option(s): 'nope'"),
    ],
)
def test_bad_values_name_the_option(raw, message):
    with pytest.raises(OptionError, match=None) as error:
        parse_options(raw)
    assert message in str(error.value)


def test_every_dimension_is_offered():
    assert options_schema()["analysis_dimensions"]["choices"] == list(DIMENSIONS)
