"""The job parameters (report language, output path) from the REST body to the CLI (`--language`,
`--output`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.errors import InputError
from advisor.server.paths import PathResolver
from advisor.server.runner import task_cli_options
from advisor.server.submission import parse_submission


@pytest.fixture
def resolver(tmp_path):
    (tmp_path / "prof").mkdir()
    return PathResolver(tmp_path)


def test_language_is_stored_and_passed_to_the_cli(resolver):
    task = parse_submission({"path": "prof", "language": "ZH"}, resolver)
    assert task.job["language"] == "zh" and "language" not in task.options  # a job parameter
    args = task_cli_options(task, "out")
    assert args[:4] == ["--output", "out", "--language", "zh"]
    assert "--dimensions" in args  # the analysis options are still there


def test_language_is_optional(resolver):
    task = parse_submission({"path": "prof", "options": {}}, resolver)
    assert task.job["language"] == "en"  # the CLI default
    stored_before_languages = replace(task, job={"output_path": "out"})
    assert task_cli_options(stored_before_languages, "out")[:4] == ["--output", "out", "--language", "en"]


@pytest.mark.parametrize("value", ["fr", 1, ""])
def test_unknown_language_is_refused(resolver, value):
    with pytest.raises(InputError, match="language must be one of en, zh"):
        parse_submission({"path": "prof", "language": value}, resolver)


def test_the_output_path_is_a_top_level_field(resolver):
    task = parse_submission({"path": "prof", "output_path": " reports ", "options": {}}, resolver)
    assert task.job["output_path"] == "reports" and "output_path" not in task.options


def test_the_output_path_among_the_options_is_still_accepted(resolver):
    # The body before job parameters were told apart from the analysis options.
    task = parse_submission({"path": "prof", "options": {"output_path": "reports"}}, resolver)
    assert task.job["output_path"] == "reports" and "output_path" not in task.options
    with pytest.raises(InputError, match=r"^options\.output_path must be a string; got 3$"):
        parse_submission({"path": "prof", "options": {"output_path": 3}}, resolver)
    with pytest.raises(InputError, match=r"^output_path must be a string; got 3$"):
        parse_submission({"path": "prof", "output_path": 3}, resolver)


def test_the_language_was_never_an_option(resolver):
    with pytest.raises(InputError, match=r"^unknown option\(s\) in options: 'language'$"):
        parse_submission({"path": "prof", "options": {"language": "zh"}}, resolver)


def test_an_output_path_given_twice_is_refused(resolver):
    body = {"path": "prof", "output_path": "a", "options": {"output_path": "b"}}
    with pytest.raises(
        InputError, match=r"output_path is given twice: as output_path and as options\.output_path"
    ):
        parse_submission(body, resolver)
