"""Real training logs from public repositories (tests/data/training_logs/README.md): one test per
format variant, asserting what a hand reading of the file gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.checks.registry import NotEvaluated, all_checks
from advisor.checks.training_base import TrainingContext, training_run
from advisor.formats.training_log import describe_training_log, read_training_log
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages, training_log_line

DATA = Path(__file__).parent / "data" / "training_logs"
TRAINING_CHECKS = [spec for spec in all_checks() if spec.scope == "training"]


def analysed(name, devices=None, seq_length=None):
    run = training_run(read_training_log(DATA / name), devices=devices, seq_length=seq_length)
    ctx = TrainingContext(run, AnalysisOptions(), Messages("en"))
    found, skipped = [], {}
    for spec in TRAINING_CHECKS:
        try:
            found += spec.fn(ctx)
        except NotEvaluated as exc:
            skipped[spec.id] = exc.reason
    return run, [(f.check, f.step) for f in found], skipped


def test_llamafactory_without_tokens_and_past_a_day():
    run, found, _ = analysed("nsllm_trainer_log.jsonl", devices=8)
    records = run.log.records.set_index("step")
    assert len(records) == 62 and records.index[-1] == 2178 and not records.loc[2178, "loss_logged"]
    assert records.loc[220, "elapsed_s"] == 86400 + 3 * 60 + 2  # "1 day, 0:03:02"
    assert run.throughput.step_time_s == pytest.approx(1968 / 5)  # 0:32:48 per 5 steps
    assert run.throughput.tokens_per_s_per_device is None and run.missing == "no_tokens"
    assert found == []  # a smooth loss, a steady clock
    summary = describe_training_log(DATA / "nsllm_trainer_log.jsonl")
    assert training_log_line(Messages("en"), summary) == "LLaMA-Factory log, 62 records, steps 5–2,178"


def test_trainer_state_of_the_same_run_agrees_on_the_step_time():
    run, found, skipped = analysed("nsllm_trainer_state.json", devices=8)
    assert len(run.log.records) == 60 and run.log.records["grad_norm"].notna().all()
    # train_runtime over global_step: the LLaMA-Factory log of the same run reads 393.6 s a step.
    assert run.throughput.step_time_s == pytest.approx(857595.0988 / 2178)
    assert run.throughput.step_time_s == pytest.approx(1968 / 5, rel=0.01)
    assert run.throughput.samples_per_s == 3.902 and run.missing == "no_tokens"  # num_input_tokens_seen: 0
    assert found == [] and "training.throughput_drop" in skipped


def test_llamafactory_short_run_with_its_end_record():
    run, found, _ = analysed("healthai_trainer_log.jsonl")
    assert run.log.records["step"].tolist() == list(range(1, 10))
    assert run.log.records["loss"].iloc[-1] == 2.3993  # the lossless end record does not replace it
    assert run.throughput.step_time_s == 39.0 and run.missing == "no_tokens"
    assert found == []


def test_llamafactory_end_record_only():
    run, found, skipped = analysed("qwen3_lora_trainer_log.jsonl", devices=8)
    # total_tokens / elapsed / devices: the log's own throughput (4129.18 tokens/s) over 8 devices
    assert run.throughput.tokens_per_s_per_device == pytest.approx(24689312 / 5979 / 8)
    assert run.throughput.tokens_per_s_per_device == pytest.approx(4129.18 / 8, rel=0.01)
    assert run.throughput.window == (0, 768)
    assert found == [] and "training.loss_spike" in skipped


def test_megatron_under_srun_label_with_the_seq_length_on_its_command_line():
    run, found, _ = analysed("megatron_open_sci_ref.log", devices=252)
    assert (run.seq_length, run.seq_length_source, run.devices_source) == (4096, "log", "user")
    assert run.log.records["step"].tolist() == list(range(50, 351, 50)) and run.log.notes == []
    window_ms = [1457.9, 1283.2, 1211.9, 1230.1, 1767.4]  # iterations 100-300
    by_hand = 1008 * 4096 * len(window_ms) / (252 * sum(window_ms) / 1000)
    assert run.throughput.window == (100, 300)
    assert run.throughput.tokens_per_s_per_device == pytest.approx(by_hand, rel=1e-9)
    # The learning rate rises through the excerpt (25,000 warm-up iterations): said, from its start.
    assert found == [("training.warmup_dominates", 50)]


def test_megatron_fp16_start_skips_iterations_while_the_loss_scale_halves():
    run, found, skipped = analysed("megatron_fp16_warmup.log", devices=8)
    assert run.log.records["skipped_iterations"].tolist() == [1.0, 1.0, 1.0]
    assert found == []  # the loss scale's calibration, not a problem
    assert run.missing == "no_seq_length"
    assert run.throughput.samples_per_s == pytest.approx(3 * 288 / ((255940.5 + 243438.3 + 243344.4) / 1000))
    assert "training.loss_spike" in skipped


def test_megatron_core_with_a_loss_field():
    run, found, _ = analysed("megatron_dit_loss.log", devices=8, seq_length=256)
    assert run.log.records["loss"].tolist()[:2] == [0.1927525, 0.1921382]
    assert run.seq_length_source == "user" and run.throughput.window == (300, 700)
    assert found == []
