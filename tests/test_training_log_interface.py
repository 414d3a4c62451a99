"""The training-log interface other parts build on: describing a log in one line (en, zh), refusing
what is not a log, and the options contract (`training_log`, `devices`, `seq_length`, the `training`
dimension), with the training log confined to the server's roots like the profiling path."""

from __future__ import annotations

import json

import pytest

from advisor.errors import InputError, OptionError
from advisor.formats.training_log import describe_training_log, read_training_log
from advisor.formats.training_log import text as log_text
from advisor.options import DIMENSIONS, JobParameters, cli_args, parse_model
from advisor.report.messages import Messages, training_log_line
from advisor.server.paths import PathResolver
from advisor.server.runner import task_cli_options
from advisor.server.submission import parse_submission


def write_llamafactory(path, steps, *, junk=False):
    """A trainer_log.jsonl as LLaMA-Factory writes it: every 10 steps, 1,000 tokens and 2 s a step."""
    with path.open("w") as fh:
        for step in steps:
            record = {
                "current_steps": step,
                "total_steps": steps[-1],
                "loss": 2.0 - step / 10_000,
                "lr": 1e-5,
                "epoch": step / 1000,
                "percentage": round(100 * step / steps[-1], 2),
                "elapsed_time": f"{step * 2 // 3600}:{step * 2 // 60 % 60:02d}:{step * 2 % 60:02d}",
                "remaining_time": "0:00:00",
                "total_tokens": 1000 * step,
            }
            fh.write(json.dumps(record) + "\n")
            if junk:
                fh.write("[WARNING] a line some other logger wrote\n")
    return path


def test_a_llamafactory_log_is_described_in_one_line(tmp_path):
    log = write_llamafactory(tmp_path / "trainer_log.jsonl", list(range(10, 12_001, 10)))
    summary = describe_training_log(log)
    assert (summary.format, summary.records, summary.first_step, summary.last_step) == (
        "llamafactory",
        1200,
        10,
        12_000,
    )
    assert not summary.approximate
    assert training_log_line(Messages("en"), summary) == "LLaMA-Factory log, 1,200 records, steps 10–12,000"
    assert training_log_line(Messages("zh"), summary) == "LLaMA-Factory 日志，1,200 条记录，步 10–12,000"


def test_junk_lines_are_skipped_and_said(tmp_path):
    log = read_training_log(write_llamafactory(tmp_path / "trainer_log.jsonl", [5, 10, 15], junk=True))
    assert log.records["step"].tolist() == [5, 10, 15]
    assert log.records["elapsed_s"].tolist() == [10.0, 20.0, 30.0]
    assert log.records["step_time_s"].tolist()[1:] == [2.0, 2.0]
    assert log.notes == [("training.note.skipped_lines", {"count": 3})]


def test_a_huge_log_is_counted_not_parsed(tmp_path, monkeypatch):
    log = write_llamafactory(tmp_path / "trainer_log.jsonl", list(range(1, 501)), junk=True)
    monkeypatch.setattr("advisor.formats.training_log.DESCRIBE_PARSE_BYTES", 1000)
    summary = describe_training_log(log)
    assert summary.approximate
    assert (summary.records, summary.first_step, summary.last_step) == (500, 1, 500)
    assert training_log_line(Messages("en"), summary) == "LLaMA-Factory log, about 500 records, steps 1–500"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty"),
        (b"hello\nworld\n", "no LLaMA-Factory record, trainer_state log_history or Megatron iteration"),
        (b'{"traceEvents": []}', "no LLaMA-Factory record"),
        (b"\x00\x01binary", "it is a binary file"),
    ],
)
def test_anything_else_is_refused_in_one_line_naming_the_file(tmp_path, content, why):
    path = tmp_path / "x.log"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        describe_training_log(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a training log") and why in message and "\n" not in message


def test_a_folder_or_a_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="it is a folder"):
        describe_training_log(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        describe_training_log(tmp_path / "absent.jsonl")


def test_an_oversized_trainer_state_is_refused(tmp_path, monkeypatch):
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"log_history": [{"step": 1, "loss": 1.0}]}))
    monkeypatch.setattr(log_text, "MAX_JSON_BYTES", 10)
    with pytest.raises(InputError, match=r"too large for a trainer_state\.json"):
        describe_training_log(state)


def test_the_options_contract():
    assert DIMENSIONS[-1] == "training"
    job = parse_model(JobParameters, {"training_log": " logs/t.jsonl ", "devices": "8", "seq_length": 4096})
    assert (job.training_log, job.devices, job.seq_length) == ("logs/t.jsonl", 8, 4096)
    assert cli_args(job)[4:] == ["--training-log", "logs/t.jsonl", "--devices", "8", "--seq-length", "4096"]
    unset = parse_model(JobParameters, {"devices": None, "seq_length": ""})
    assert (unset.devices, unset.seq_length, unset.training_log) == (None, None, "")
    assert "--devices" not in cli_args(unset) and "--training-log" not in cli_args(unset)
    for bad in (0, -1, "eight", 1.5, True):
        with pytest.raises(OptionError, match="devices must be"):
            parse_model(JobParameters, {"devices": bad})


def test_the_training_log_is_confined_like_the_profiling_path(tmp_path):
    root = tmp_path / "root"
    (root / "prof").mkdir(parents=True)
    write_llamafactory(root / "trainer_log.jsonl", [1, 2])
    outside = write_llamafactory(tmp_path / "outside.jsonl", [1, 2])
    resolver = PathResolver(root)
    task = parse_submission({"path": "prof", "training_log": "trainer_log.jsonl", "devices": 8}, resolver)
    assert (task.job["training_log"], task.job["devices"]) == ("./trainer_log.jsonl", 8)
    assert task_cli_options(task, "out", str(root / "trainer_log.jsonl"))[4:8] == [
        "--training-log",
        str(root / "trainer_log.jsonl"),
        "--devices",
        "8",
    ]
    with pytest.raises(InputError, match=r"training_log .* is outside the folders this server may read"):
        parse_submission({"path": "prof", "training_log": str(outside)}, resolver)
    with pytest.raises(InputError, match=r"training_log .* does not exist"):
        parse_submission({"path": "prof", "training_log": "absent.jsonl"}, resolver)
    with pytest.raises(InputError, match=r"training_log .* is not a file"):
        parse_submission({"path": "prof", "training_log": "prof"}, resolver)
    with pytest.raises(InputError, match="must be a local file"):
        parse_submission({"path": "prof", "training_log": "obs://bucket/t.jsonl"}, resolver)
