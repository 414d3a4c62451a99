"""The demo job's training log (`performance-advisor demo`, scripts/start.sh): a LLaMA-Factory
`trainer_log.jsonl` in the demo profile's folder that leaves the profile's discovery as it was, and a
clean log: analysed alone or beside the demo profile, it has no training finding of high priority."""

from __future__ import annotations

import json

from advisor import cli
from advisor.demo import (
    DEMO_TRAINING_LOG,
    DEMO_TRAINING_LOG_SPEC,
    write_demo_profile,
    write_demo_training_log,
)
from advisor.formats import discover
from advisor.formats.training_log import describe_training_log

SPEC = DEMO_TRAINING_LOG_SPEC


def test_the_demo_log_is_one_file_beside_the_rank_folders(tmp_path):
    profile = write_demo_profile(tmp_path / "profiling_dir1")
    before = sorted(p.name for p in profile.iterdir())
    log = write_demo_training_log(profile / DEMO_TRAINING_LOG)
    # Only the log was added (the generator's scratch folder and ground truth are gone).
    assert sorted(p.name for p in profile.iterdir()) == sorted([*before, DEMO_TRAINING_LOG])
    summary = describe_training_log(log)
    assert (summary.format, summary.records, summary.first_step, summary.last_step) == (
        "llamafactory",
        SPEC.steps // SPEC.log_every,
        SPEC.log_every,
        SPEC.steps,
    )


def test_the_demo_log_leaves_the_profile_discovery_as_it_was(tmp_path):
    without = discover(write_demo_profile(tmp_path / "without"))
    profile = write_demo_profile(tmp_path / "with")
    write_demo_training_log(profile / DEMO_TRAINING_LOG)
    found = discover(profile)
    assert (found.format, found.device, found.steps, found.warnings) == (
        without.format,
        without.device,
        without.steps,
        without.warnings,
    )
    assert [rank.rank for rank in found.ranks] == [rank.rank for rank in without.ranks] == [0, 1]


def analyse(tmp_path, *argv: str) -> dict:
    out = tmp_path / "out"
    assert cli.main(["analyze", *argv, "--output", str(out), "--format", "json", "--quiet"]) == 0
    return json.loads(next(out.glob("*.json")).read_text())


def test_the_demo_log_is_clean_alone_and_beside_the_demo_profile(tmp_path, capsys):
    """No training finding (the log is clean, its records span enough whole seconds of LLaMA-Factory's
    clock, and its step time is the profile's), and its throughput is the generated one within 1 %."""
    profile = write_demo_profile(tmp_path / "profiling_dir1")
    log = str(write_demo_training_log(profile / DEMO_TRAINING_LOG))
    alone = analyse(tmp_path / "alone", log, "--devices", "2")
    beside = analyse(tmp_path / "beside", str(profile), "--training-log", log, "--devices", "2")
    for report in (alone, beside):
        assert [f["check"] for f in report["findings"] if f["dimension"] == "training"] == []
        tokens = report["training"]["throughput"]["tokens_per_s_per_device"]
        expected = SPEC.global_batch_size * SPEC.seq_length / SPEC.step_time_s / SPEC.devices
        assert abs(tokens / expected - 1) < 0.01, (tokens, expected)
    # Beside the profile, the profiled steps were compared with the log's (and found representative).
    assert "training.unrepresentative_profile" not in {c["check"] for c in beside["not_evaluated"]}
    assert {f["check"] for f in beside["findings"]} >= {"communication.exposed"}
