"""The report language from the REST body to the CLI (`--language`)."""

from __future__ import annotations

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
    assert task.options["language"] == "zh"
    args = task_cli_options(task.options)
    assert args[-2:] == ["--language", "zh"]
    assert "--dimensions" in args  # the analysis options are still there


def test_language_is_optional(resolver):
    task = parse_submission({"path": "prof", "options": {}}, resolver)
    assert "language" not in task.options
    assert "--language" not in task_cli_options(task.options)  # the CLI default (en)


@pytest.mark.parametrize("value", ["fr", 1, ""])
def test_unknown_language_is_refused(resolver, value):
    with pytest.raises(InputError, match="language must be one of en, zh"):
        parse_submission({"path": "prof", "language": value}, resolver)
