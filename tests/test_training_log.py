"""Training logs (issue 21): the three formats parse, throughput matches a hand computation of the
seed formulas within 1 %, every injected anomaly is found at its step and clean logs give nothing,
and the CLI writes a report with the Training section for a log alone and beside a profile."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from advisor import cli
from advisor.checks.registry import NotEvaluated, all_checks
from advisor.checks.training_base import TrainingContext, training_run, window_bounds
from advisor.formats.training_log import read_training_log
from advisor.options import AnalysisOptions
from advisor.report.jsonout import report_schema
from advisor.report.messages import Messages
from advisor.synth.training_log import ANOMALY_CHECKS, LOG_FORMATS, TrainingLogSpec, write_training_log

from .engine_fixtures import demo

TRAINING_CHECKS = [spec for spec in all_checks() if spec.scope == "training"]


def generated(tmp_path, name="log", **spec):
    path = write_training_log(tmp_path / name, TrainingLogSpec(**spec))
    return path, json.loads((path.parent / "ground_truth.json").read_text())


def findings_of(path, devices=8, seq_length=4096, **context):
    run = training_run(read_training_log(path), devices=devices, seq_length=seq_length)
    ctx = TrainingContext(run, AnalysisOptions(), Messages("en"), **context)
    found, skipped = [], []
    for spec in TRAINING_CHECKS:
        try:
            found += spec.fn(ctx)
        except NotEvaluated as exc:
            skipped.append((spec.id, exc.reason))
    return run, found, skipped


def clock_seconds(text):
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def test_llamafactory_throughput_is_the_seed_formula(tmp_path):
    path, truth = generated(tmp_path, format="llamafactory")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records = [r for r in records if "loss" in r]
    a, b = window_bounds(len(records))
    first, last = records[a], records[b]
    by_hand = (
        (last["total_tokens"] - first["total_tokens"])
        / (clock_seconds(last["elapsed_time"]) - clock_seconds(first["elapsed_time"]))
        / 8
    )
    run = training_run(read_training_log(path), devices=8)
    assert run.throughput.window == (first["current_steps"], last["current_steps"])
    assert run.throughput.tokens_per_s_per_device == pytest.approx(by_hand, rel=1e-9)
    assert by_hand == pytest.approx(truth["tokens_per_s_per_device"], rel=0.01)
    assert run.devices_source == "user"


def test_megatron_throughput_is_the_seed_formula(tmp_path):
    path, truth = generated(tmp_path, format="megatron")
    pattern = re.compile(r"elapsed time per iteration \(ms\): ([\d.]+) .*global batch size:\s+(\d+)")
    lines = [pattern.search(line) for line in path.read_text().splitlines() if "iteration " in line]
    times_ms = [float(m.group(1)) for m in lines if m]
    batch = int(lines[0].group(2))
    a, b = window_bounds(len(times_ms))
    window = times_ms[a : b + 1]
    # global batch size x seq length / (devices x elapsed time per iteration), over the window
    by_hand = batch * 4096 * len(window) / (8 * sum(window) / 1000)
    run = training_run(read_training_log(path))
    assert (run.devices, run.devices_source, run.seq_length, run.seq_length_source) == (8, "log", 4096, "log")
    assert run.throughput.tokens_per_s_per_device == pytest.approx(by_hand, rel=1e-9)
    assert by_hand == pytest.approx(truth["tokens_per_s_per_device"], rel=0.01)
    per_record = run.series["tokens_per_s_per_device"].tolist()
    assert per_record[0] == pytest.approx(batch * 4096 / (8 * times_ms[0] / 1000), rel=1e-9)
    assert run.throughput.samples_per_s == pytest.approx(batch * len(window) / (sum(window) / 1000), rel=1e-9)


def test_trainer_state_throughput_is_the_run_average(tmp_path):
    path, truth = generated(tmp_path, format="hf_trainer_state")
    state = json.loads(path.read_text())
    totals = state["log_history"][-1]
    tokens = [e["num_input_tokens_seen"] for e in state["log_history"] if "num_input_tokens_seen" in e][-1]
    run = training_run(read_training_log(path), devices=8)
    assert run.throughput.tokens_per_s_per_device == pytest.approx(
        tokens / totals["train_runtime"] / 8, rel=1e-9
    )
    assert run.throughput.tokens_per_s_per_device == pytest.approx(truth["tokens_per_s_per_device"], rel=0.01)
    assert run.throughput.samples_per_s == totals["train_samples_per_second"]


@pytest.mark.parametrize("log_format", LOG_FORMATS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_logs_give_no_finding(tmp_path, log_format, seed):
    path, _ = generated(tmp_path, format=log_format, seed=seed)
    _, found, _ = findings_of(path)
    assert found == []


@pytest.mark.parametrize("seed", range(4))
def test_a_clock_of_whole_seconds_is_no_drop_nor_stall(tmp_path, seed):
    # A record every 5.5 s, on LLaMA-Factory's "H:MM:SS" clock: the intervals read 5 or 6 s, a 20 %
    # swing of the step time that once passed for a high throughput drop.
    spec = {"steps": 6000, "log_every": 50, "step_time_s": 0.11}
    path, _ = generated(tmp_path, format="llamafactory", seed=seed, **spec)
    log = read_training_log(path)
    assert log.clock_resolution_s == 1.0
    assert set(log.records["step_time_s"].iloc[1:].round(2)) == {0.1, 0.12}
    _, found, _ = findings_of(path)
    assert found == []


# anomaly -> (the ground truth's key, steps of tolerance); the check is ANOMALY_CHECKS[anomaly]
INJECTED = {
    "loss_spike": ("training.loss_spike", 0),
    "nan_loss": ("training.nan_loss", 0),
    # The rise starts where the smoothed loss leaves the plateau of its minimum: within 3 records.
    "loss_divergence": ("training.loss_divergence", 30),
    "throughput_drop": ("training.throughput_drop", 0),
    "stalls": ("training.throughput_drop.stalls", 0),
    "warmup": ("training.warmup_dominates", 0),
}
TIMED = ("throughput_drop", "stalls", "warmup")  # need a time per step: not in trainer_state.json


@pytest.mark.parametrize("log_format", LOG_FORMATS)
@pytest.mark.parametrize("anomaly", list(INJECTED))
def test_each_injected_anomaly_is_found_at_its_step(tmp_path, log_format, anomaly):
    path, truth = generated(tmp_path, format=log_format, inject=(anomaly,))
    key, tolerance = INJECTED[anomaly]
    check_id = ANOMALY_CHECKS[anomaly]
    _, found, skipped = findings_of(path)
    if log_format == "hf_trainer_state" and anomaly in TIMED:
        assert found == [] and check_id in dict(skipped)  # said, not guessed
        return
    assert [f.check for f in found] == [check_id]
    assert abs(found[0].step - truth["anomalies"][key]["step"]) <= tolerance
    if anomaly == "loss_spike":
        assert [row[0] for row in found[0].evidence[0].rows] == truth["anomalies"][key]["steps"]
    if anomaly == "stalls":
        assert f"every {truth['anomalies'][key]['period']} steps" in found[0].title
    if anomaly == "throughput_drop":
        assert found[0].priority == "high" and found[0].gain_basis == "measured"


def test_megatron_with_several_printers_and_junk_reads_one_rank(tmp_path):
    path, _ = generated(tmp_path, format="megatron", printers=3, state_facts=False)
    log = read_training_log(path)
    assert len(log.records) == 200 and log.records["step"].is_unique
    assert log.notes == [("training.note.printers", {"printers": "0, 1, 2", "chosen": "0"})]
    run = training_run(log)
    assert run.throughput.tokens_per_s_per_device is None and run.missing == "no_devices"
    run = training_run(log, devices=8)
    assert run.missing == "no_seq_length" and run.throughput.samples_per_s is not None
    run = training_run(log, devices=8, seq_length=4096)
    assert (run.devices_source, run.seq_length_source) == ("user", "user")


def test_a_profiled_step_far_from_the_logs_is_unrepresentative(tmp_path):
    path, _ = generated(tmp_path)  # 4 s steps
    _, found, _ = findings_of(path, profile_step_s=6.5, profile_step=14)
    assert [(f.check, f.step, f.priority) for f in found] == [
        ("training.unrepresentative_profile", 14, "medium")
    ]
    _, found, _ = findings_of(path, profile_step_s=4.3, profile_step=14)
    assert found == []


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def test_cli_log_alone_and_beside_a_profile(tmp_path, capsys):
    path, _ = generated(tmp_path, inject=("stalls", "loss_spike"))
    assert run_cli("analyze", path, "--devices", "8", "--output", tmp_path / "alone", "--quiet") == 0
    out = capsys.readouterr().out
    report = json.loads(next((tmp_path / "alone").glob("*.json")).read_text())
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    training = report["training"]
    assert training["format"] == "llamafactory" and training["devices"] == 8
    assert (
        training["devices_source"] == "user"
        and training["records"] == 200
        and training["steps"] == [10, 2000]
    )
    assert training["series"]["step"][:2] == [10, 20] and len(training["series"]["loss"]) == 200
    assert report["input"]["description"] == "LLaMA-Factory log, 200 records, steps 10–2,000"
    steps = {f["check"]: f["step"] for f in report["findings"]}
    assert steps == {"training.throughput_drop": 200, "training.loss_spike": 600}
    assert report["not_evaluated"] == [
        {
            "check": "training.unrepresentative_profile",
            "reason": "No profile was analysed beside the training log.",
        }
    ]
    html = next((tmp_path / "alone").glob("*.html")).read_text()
    charts = re.findall(r'id="pa-chart-training-([\w-]+)"', html)
    assert 'id="pa-training"' in html and charts == [
        "loss",
        "throughput",
        "lr",
    ]  # LLaMA-Factory logs no grad norm
    assert "No profile was given: only the training log was analysed." in html
    assert str(path) in out.splitlines()[0] or out.splitlines()[0].endswith(".html")

    profile, _ = demo(tmp_path)
    args = ("analyze", profile, "--training-log", path, "--devices", "8", "--output", tmp_path / "both")
    assert run_cli(*args, "--quiet", "--format", "json,html") == 0
    report = json.loads(next((tmp_path / "both").glob("*.json")).read_text())
    assert report["input"]["kind"] == "ascend_pt" and report["training"]["records"] == 200
    dimensions = {f["dimension"] for f in report["findings"]}
    assert "training" in dimensions and len(dimensions) > 1
    profiled = [f for f in report["findings"] if f["check"] == "training.unrepresentative_profile"]
    assert profiled and profiled[0]["step"] == report["input"]["steps"][0]
    assert 'id="pa-training"' in next((tmp_path / "both").glob("*.html")).read_text()


def test_cli_refuses_in_one_line(tmp_path, capsys):
    path, _ = generated(tmp_path)
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello\n")
    profile, _ = demo(tmp_path)
    assert (
        run_cli("analyze", profile, "--training-log", not_a_log, "--output", tmp_path / "o", "--quiet") == 2
    )
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"performance-advisor: error: {not_a_log}: not a training log")
    assert run_cli("analyze", path, "--compare", profile, "--output", tmp_path / "o", "--quiet") == 2
    assert "is a training log: --compare needs a profile as PATH" in capsys.readouterr().err
    assert run_cli("analyze", path, "--devices", "0", "--output", tmp_path / "o", "--quiet") == 2
    assert "devices must be between 1 and" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_loss_stuck_at_exactly_zero_is_its_own_finding(tmp_path):
    # As in a real broken fine-tuning run (every label masked): the loss falls, then reads 0.0 for good.
    records = [
        {"current_steps": step, "total_steps": 100, "loss": round(2.3 - 0.05 * step, 4) if step < 20 else 0.0,
         "lr": 1e-4, "elapsed_time": f"0:{step // 60:02d}:{step % 60:02d}"}
        for step in range(5, 105, 5)
    ]  # fmt: skip
    path = tmp_path / "trainer_log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    _, found, _ = findings_of(path)
    zero = [f for f in found if f.check == "training.nan_loss"]
    assert [(f.priority, f.step) for f in zero] == [("medium", 20)]
    assert zero[0].title == "The loss is exactly 0 (from step 20)"
    assert "17 of 20 logged loss values are exactly 0" in zero[0].description
    # Two zeros are not enough (a loss rounded to 4 decimals can read 0.0 once or twice).
    records[-1]["loss"] = records[-2]["loss"] = 0.0
    for r in records[3:-2]:
        r["loss"] = 0.5
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    _, found, _ = findings_of(path)
    assert [f for f in found if f.check == "training.nan_loss"] == []
