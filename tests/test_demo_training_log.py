"""The demo job's training log (`performance-advisor demo`, scripts/start.sh): a LLaMA-Factory
`trainer_log.jsonl` in the demo profile's folder that leaves the profile's discovery as it was, and a
clean log: analysed alone or beside the demo profile, it has no training finding of high priority."""

from __future__ import annotations

import json

from advisor import cli
from advisor.demo import DEMO_TRAINING_LOG, DEMO_TRAINING_LOG_SPEC, write_demo_profile, write_demo_training_log
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
