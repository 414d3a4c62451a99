"""Damaged numbers in the input: the readers drop them with one warning per file, and the report built
on what is left holds no nonsense (no gain above the step, no nan/inf in its text, no RuntimeWarning,
no finding the intact data does not give)."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import shutil
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.checks.registry import check, unregister
from advisor.engine import MAX_LOST_SHARE, comparison_data_losses, run_analysis
from advisor.formats import discover, load_table
from advisor.formats.ascend_cluster.cluster_output import read_cluster_step_trace
from advisor.formats.ascend_common.folder import OUTPUT_DIR
from advisor.formats.sanity import INCOMPLETE, LOST_SHARE, drop_damaged, time_columns
from advisor.model import RankInfo
from advisor.report.messages import Messages, NonFiniteValue
from advisor.report.model import Finding
from advisor.synth import SynthSpec, write_synth_profile

NON_FINITE = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both exports of one 2-rank run, with a few problems for the checks to find."""
    spec = SynthSpec(ranks=2, export="both", inject=("schedule.gc", "dataloader.slow"), inject_ranks=(0,))
    return write_synth_profile(tmp_path_factory.mktemp("sanity") / "run", spec)


def copy_export(source: Path, dest: Path, export: str) -> Path:
    """A copy of `source` with one export only: the db files or the CSV/JSON files are left out."""
    shutil.copytree(source, dest)
    for folder in dest.glob(f"*/{OUTPUT_DIR}"):
        for path in folder.iterdir():
            is_db = path.suffix == ".db"
            if is_db != (export == "db"):
                path.unlink()
    return dest


def output(root: Path, rank: int) -> Path:
    return next(r.path for r in discover(root).ranks if r.rank == rank) / OUTPUT_DIR


def rank_of(root: Path, rank: int) -> RankInfo:
    return next(r for r in discover(root).ranks if r.rank == rank)


# --- damage, written into copies -----------------------------------------------------------------


def edit_csv(path: Path, column: str, values: dict[int, str]) -> None:
    """Data row i (0-based) of `column` becomes values[i]."""
    with path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    at = [cell.strip() for cell in table[0]].index(column)
    for row, value in values.items():
        table[row + 1][at] = value
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(table)


def host_op(event: dict) -> bool:
    return event.get("cat") == "cpu_op" and not str(event.get("name")).startswith("ProfilerStep#")


def edit_trace(path: Path, select: Callable[[dict], bool], field: str, values: list[object]) -> None:
    """The first len(values) X events that `select` picks get values[i] as `field`."""
    events = json.loads(path.read_text(encoding="utf-8"))
    picked = [e for e in events if e.get("ph") == "X" and select(e)][: len(values)]
    assert len(picked) == len(values)
    for event, value in zip(picked, values, strict=True):
        event[field] = value
    path.write_text(json.dumps(events), encoding="utf-8")


def edit_communication(path: Path, field: str, values: list[object]) -> None:
    """The first len(values) ops of communication.json get values[i] as their time info `field`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    infos = [
        info["Communication Time Info"]
        for kinds in data.values()
        for ops in kinds.values()
        for name, info in ops.items()
        if name != "Total Op Info"
    ][: len(values)]
    for info, value in zip(infos, values, strict=True):
        info[field] = value
    path.write_text(json.dumps(data), encoding="utf-8")


def edit_db(path: Path, sql: str) -> int:
    """Run an UPDATE on a copied db; the number of rows it changed."""
    with sqlite3.connect(path) as db:
        changed = db.execute(sql).rowcount
    return changed


def damage_text(root: Path, rank: int = 1) -> None:
    """Negative, missing, infinite and absurd durations in four files of `rank` (TEXT_CASES)."""
    out = output(root, rank)
    edit_csv(
        out / "kernel_details.csv",
        "Duration(us)",
        {0: "-12.5", 1: "-0.5", 2: "N/A", 3: "inf", 4: "1e308", 5: "-inf", 6: "nan"},
    )
    edit_trace(out / "trace_view.json", host_op, "dur", [-40.0, 1e308, "inf", None])
    edit_trace(out / "trace_view.json", host_op, "ts", ["-5.0"])  # already damaged: counted once
    edit_csv(out / "step_trace_time.csv", "Free", {1: "-3.5"})
    edit_communication(out / "communication.json", "Elapse Time(ms)", [-1.0, 1e308])


def damage_db(root: Path, rank: int = 1) -> None:
    """The same kinds of damage in the db export (DB_CASES): end before start, no end, absurd values."""
    out = output(root, rank)
    profiler, analysis = out / f"ascend_pytorch_profiler_{rank}.db", out / "analysis.db"
    kernels = edit_db(
        profiler,
        "UPDATE TASK SET endNs = startNs - 5000 WHERE globalTaskId IN "
        "(SELECT globalTaskId FROM COMPUTE_TASK_INFO ORDER BY globalTaskId LIMIT 4)",
    )
    host = edit_db(
        profiler,
        "UPDATE PYTORCH_API SET endNs = NULL WHERE rowid IN "
        "(SELECT rowid FROM PYTORCH_API WHERE type = (SELECT id FROM ENUM_API_TYPE WHERE name = 'op') "
        "AND name NOT IN (SELECT id FROM STRING_IDS WHERE value LIKE 'ProfilerStep%') "
        "ORDER BY rowid LIMIT 2 OFFSET 5)",
    )
    steps = edit_db(analysis, "UPDATE StepTraceTime SET free = 1e308 WHERE step = '13'")
    comm = edit_db(analysis, "UPDATE CommAnalyzerTime SET elapse_time = -1 WHERE rowid IN (1, 2)")
    assert [kernels, host, steps, comm] == [count for _, _, count in DB_CASES]


# --- the readers ---------------------------------------------------------------------------------


def assert_clean(frame: pd.DataFrame, table: str) -> None:
    """No duration left that is negative, infinite or absurd; no negative timestamp."""
    stamps, durations = time_columns(table)
    for column in durations:
        values = frame[column].to_numpy(np.float64)
        assert not (values < 0).any() and not np.isinf(values).any() and not (values > 1e12).any(), column
    for column in stamps:
        assert not (frame[column].dropna() < 0).any(), column


# file, table, damaged rows of rank 1
TEXT_CASES = [
    ("kernel_details.csv", "kernels", 7),
    ("trace_view.json", "host_ops", 4),
    ("step_trace_time.csv", "step_trace", 1),
    ("communication.json", "comm_ops", 2),
]
DB_CASES = [
    ("ascend_pytorch_profiler_1.db", "kernels", 4),
    ("ascend_pytorch_profiler_1.db", "host_ops", 2),
    ("analysis.db", "step_trace", 1),
    ("analysis.db", "comm_ops", 2),
]


def intact_and_damaged(source: Path, folder: Path, export: str) -> tuple[Path, Path]:
    intact = copy_export(source, folder / "intact", export)
    damaged = copy_export(source, folder / "damaged", export)
    (damage_text if export == "text" else damage_db)(damaged)
    return intact, damaged


@pytest.fixture(scope="module")
def text_pair(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return intact_and_damaged(generated, tmp_path_factory.mktemp("text"), "text")


@pytest.fixture(scope="module")
def db_pair(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return intact_and_damaged(generated, tmp_path_factory.mktemp("db"), "db")


@pytest.mark.parametrize(
    ("export", "file", "table", "count"),
    [("text", *case) for case in TEXT_CASES] + [("db", *case) for case in DB_CASES],
)
def test_readers_drop_damaged_rows_with_one_warning_per_file(text_pair, db_pair, export, file, table, count):
    pair = text_pair if export == "text" else db_pair
    intact, damaged = (load_table(table, rank_of(root, 1), use_cache=False) for root in pair)
    assert len(intact) - len(damaged) == count
    assert_clean(damaged, table)
    path = output(pair[1], 1) / file
    mine = [w for w in damaged.attrs["warnings"] if w.startswith(f"{path}: ")]
    assert len(mine) == 1 and "dropped" in mine[0], damaged.attrs["warnings"]
    assert re.search(rf"\b{count} {table} rows? with\b|: {count} rows dropped", mine[0]), mine[0]
    assert damaged.attrs[LOST_SHARE] == pytest.approx(count / len(intact))
    assert LOST_SHARE not in intact.attrs and not intact.attrs.get("warnings")


def test_the_warning_names_each_problem(text_pair):
    kernels = load_table("kernels", rank_of(text_pair[1], 1), use_cache=False)
    [warning] = kernels.attrs["warnings"]
    assert warning.startswith(f"{output(text_pair[1], 1) / 'kernel_details.csv'}: 7 rows dropped (")
    for part in (
        "2 kernels rows with no Duration(us)",  # N/A and nan
        "2 kernels rows with an infinite Duration(us)",
        "2 kernels rows with a negative Duration(us)",
        "1 kernels row with Duration(us) above",
    ):
        assert part in warning
    host = load_table("host_ops", rank_of(text_pair[1], 1), use_cache=False)
    [trace_warning] = [w for w in host.attrs["warnings"] if "trace_view.json" in w]
    for part in ("1 host_ops row with a negative ts", "1 host_ops row with no dur", "an infinite dur"):
        assert part in trace_warning
    assert "1 host_ops row with dur above" in trace_warning


def test_a_warm_cache_says_what_a_cold_read_said(text_pair, table_cache, monkeypatch):
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB", "0")  # cache the small generated files too
    rank = rank_of(text_pair[1], 1)
    cold = load_table("kernels", rank)
    assert list(table_cache.glob("kernels-*.parquet"))
    warm = load_table("kernels", rank)
    pd.testing.assert_frame_equal(cold, warm)
    assert warm.attrs == cold.attrs and warm.attrs["warnings"] and warm.attrs[LOST_SHARE] > 0


def test_absurd_timestamps_and_spans():
    day_ns = 86_400 * 10**9
    base = 1_736_408_883_000_000_000
    frame = pd.DataFrame(
        {
            "start_ns": pd.array([base, base + 10**9, base + 2 * 10**9, 5, base + 3 * day_ns, None], "Int64"),
            "dur_us": [1.0, 65e6, 63e6, 1.0, 1.0, 2.0],
        }
    )
    tables, warning = drop_damaged({"gc": frame}, "gc.json", {"dur_us": "dur"})
    # 5 ns and 3 days later are absurd, and a GC without a start is damage; the plausible starts span
    # 2 s, so a duration may reach 2 * 2 s + 60 s = 64 s
    assert tables["gc"]["start_ns"].tolist() == [base, base + 2 * 10**9]
    assert warning == (
        "gc.json: 4 rows dropped (1 gc row with no start_ns; 2 gc rows with start_ns more than a day "
        "from the file's other timestamps; 1 gc row with dur above 64 s (twice the file's time span plus "
        "a minute))"
    )
    assert tables["gc"].attrs[LOST_SHARE] == pytest.approx(4 / 6)
    clean = frame.iloc[[0, 2]].reset_index(drop=True)
    same, none = drop_damaged({"gc": clean}, "gc.json")
    assert none is None and same["gc"] is clean  # nothing dropped: not copied


def test_optional_values_may_be_missing():
    frame = pd.DataFrame({"duration_us": [1.0, 2.0], "wait_us": [math.nan, 1.0], "start_ns": [None, None]})
    frame["start_ns"] = frame["start_ns"].astype("Int64")
    tables, warning = drop_damaged({"kernels": frame}, "k.csv")
    assert warning is None and len(tables["kernels"]) == 2
    frame.loc[0, "duration_us"] = math.nan  # required
    tables, warning = drop_damaged({"kernels": frame}, "k.csv")
    assert warning == "k.csv: 1 kernels row with no duration_us dropped"


def test_files_without_timestamps_allow_a_day():
    frame = pd.DataFrame({"step": pd.array([1, 2], "Int64"), "free_us": [8.6e10, 8.7e10]})
    tables, warning = drop_damaged({"step_trace": frame}, "s.csv", {"free_us": "Free"})
    assert tables["step_trace"]["step"].tolist() == [1]
    assert warning == "s.csv: 1 step_trace row with Free above a day dropped"


# --- the report ----------------------------------------------------------------------------------


def texts(report) -> list[str]:
    return [t for f in report.findings for t in (f.title, f.description, *f.suggestions)]


def analyse(root: Path, **kwargs) -> object:
    """run_analysis with every RuntimeWarning (NonFiniteValue included) an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return run_analysis(root, **kwargs)


def assert_trustworthy(report, caplog) -> None:
    assert not [t for t in texts(report) if NON_FINITE.search(t)]
    assert not [n for n in report.not_evaluated if "internal error" in n.reason], report.not_evaluated
    steps: dict[int, float] = {}
    for row in report.summary["per_rank"]:
        steps[row["rank"]] = max(steps.get(row["rank"], 0.0), row["step_us"])
    for finding in report.findings:
        ranks = finding.ranks or list(steps)
        if finding.estimated_gain_us is not None:
            assert finding.estimated_gain_us <= max(steps[r] for r in ranks if r in steps), finding.check
    assert not [r for r in caplog.records if r.name == "advisor.engine"], "a check overstated its gain"


@pytest.mark.parametrize("export", ["text", "db"])
def test_damaged_data_gives_no_new_findings(export, text_pair, db_pair, caplog):
    intact, damaged = text_pair if export == "text" else db_pair
    good, bad = analyse(intact), analyse(damaged)
    assert_trustworthy(good, caplog)
    assert_trustworthy(bad, caplog)
    assert {f.check for f in bad.findings} <= {f.check for f in good.findings}
    assert not good.warnings or all("dropped" not in w for w in good.warnings)
    dropped = [w for w in bad.warnings if "dropped" in w]
    files = [w.split(": ", 1)[0] for w in dropped]
    if export == "text":
        assert sorted(Path(f).name for f in files) == sorted(name for name, _, _ in TEXT_CASES)
    else:
        assert {Path(f).name for f in files} == {"ascend_pytorch_profiler_1.db", "analysis.db"}
    assert all("/" in f and Path(f).parent.name == OUTPUT_DIR for f in files)


def test_a_broken_trace_gives_no_comparison_finding(tmp_path, caplog):
    """The issue's case: one rank's trace cut short (or its host events damaged) gave a
    comparison.api finding which the intact profile does not give. Rank 1 is made slow so that the
    slowest rank (1) is compared with the fastest (0), whose trace is then damaged."""
    intact = write_synth_profile(tmp_path / "intact", SynthSpec(ranks=2, inject=("cluster.slow_rank",)))
    report = analyse(intact)
    assert_trustworthy(report, caplog)
    compared = {f.check for f in report.findings if f.check.startswith("comparison.")}
    assert "comparison.kernel" in compared
    truncated = copy_export(intact, tmp_path / "truncated", "text")
    trace = output(truncated, 0) / "trace_view.json"
    trace.write_bytes(trace.read_bytes()[: trace.stat().st_size // 2])
    negative = copy_export(intact, tmp_path / "negative", "text")
    edit_trace(output(negative, 0) / "trace_view.json", host_op, "dur", [-1000.0] * 60)
    for root, why in ((truncated, "cut short"), (negative, "dropped as damaged")):
        report = analyse(root)
        assert_trustworthy(report, caplog)
        assert not [f for f in report.findings if f.check == "comparison.api"]
        assert {f.check for f in report.findings if f.check.startswith("comparison.")} <= compared
        [reason] = [n.reason for n in report.not_evaluated if n.check == "comparison.api"]
        assert reason.startswith("not evaluated on damaged data: fastest rank 0") and why in reason
        assert "host_ops" in reason and "trace_view.json" in reason
    # A healthy run: ranks within jitter are not compared at all, damaged or not.
    healthy = write_synth_profile(tmp_path / "healthy", SynthSpec(ranks=2))
    cut = copy_export(healthy, tmp_path / "healthy_cut", "text")
    trace = output(cut, 1) / "trace_view.json"
    trace.write_bytes(trace.read_bytes()[: trace.stat().st_size // 2])
    report = analyse(cut)
    assert not [f for f in report.findings if f.check.startswith("comparison.")]


@pytest.fixture
def throwaway_checks():
    """Checks registered for one test: a comparison that always finds something, a rank check that
    overstates its gain."""

    @check("comparison.sanity_probe", "comparison", needs=frozenset({"host_ops"}), scope="comparison")
    def probe(ctx):
        return [Finding("comparison.sanity_probe", "comparison", "low", "probe", "what it found")]

    @check("overall.sanity_boast", "overall", needs=frozenset({"step_trace"}))
    def boast(ctx):
        return [Finding("overall.sanity_boast", "overall", "low", "boast", "", estimated_gain_us=1e12)]

    yield
    unregister("comparison.sanity_probe")
    unregister("overall.sanity_boast")


def test_a_comparison_on_a_few_dropped_rows_says_so(generated, tmp_path, throwaway_checks, caplog):
    root = copy_export(generated, tmp_path / "one", "text")
    edit_trace(output(root, 1) / "trace_view.json", host_op, "dur", [-1.0])
    report = run_analysis(root)
    [probe] = [f for f in report.findings if f.check == "comparison.sanity_probe"]
    assert probe.description.startswith("what it found\nData note: fastest rank 1: ")
    assert "of its host_ops rows were dropped as damaged" in probe.description
    assert "trace_view.json: 1 host_ops row with a negative dur dropped" in probe.description
    # the rank check's gain of 1e12 us is capped at the longest step of its rank, and that is logged
    [boast] = [f for f in report.findings if f.check == "overall.sanity_boast"]
    steps = {(row["rank"], row["step"]): row["step_us"] for row in report.summary["per_rank"]}
    assert boast.estimated_gain_us == pytest.approx(max(steps.values()), abs=1e-3)
    logged = [r.getMessage() for r in caplog.records if r.name == "advisor.engine"]
    assert any("overall.sanity_boast" in line and "capped" in line for line in logged)


def test_comparison_losses_block_above_the_limit():
    m = Messages("en")
    ok = pd.DataFrame({"x": [1]})
    few = pd.DataFrame({"x": [1]})
    few.attrs = {LOST_SHARE: MAX_LOST_SHARE / 2, "warnings": ["f.csv: 1 kernels row with … dropped"]}
    many = pd.DataFrame({"x": [1]})
    many.attrs = {LOST_SHARE: MAX_LOST_SHARE * 2, "warnings": ["g.csv: …"]}
    cut = pd.DataFrame({"x": [1]})
    cut.attrs = {INCOMPLETE: True, "warnings": ["t.json: truncated at byte 9; read 3 events"]}
    sides = [
        ("rank 3", {"kernels": ok, "host_ops": few}, {}),
        ("rank 0", {"kernels": ok}, {"gc": "no GC_RECORD"}),
    ]
    notes, blockers = comparison_data_losses(m, ["kernels", "host_ops", "gc"], sides)
    assert blockers == []
    assert notes == [
        "rank 3: 0.5% of its host_ops rows were dropped as damaged (f.csv: 1 kernels row with … dropped)",
        "rank 0: its gc table could not be read (no GC_RECORD)",
    ]
    _, blockers = comparison_data_losses(m, ["kernels"], [("rank 3", {"kernels": many}, {})])
    assert blockers == ["rank 3: 2.0% of its kernels rows were dropped as damaged (g.csv: …)"]
    _, blockers = comparison_data_losses(m, ["kernels"], [("rank 3", {"kernels": cut}, {})])
    assert "cut short" in blockers[0] and "t.json: truncated" in blockers[0]


# --- messages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh"])
def test_messages_never_print_a_non_finite_number(language):
    m = Messages(language)
    values = {"side": "rank 1", "table": "kernels", "detail": ""}
    with pytest.warns(NonFiniteValue, match=r"'engine.comparison.rows_dropped': share=nan"):
        text = m.t("engine.comparison.rows_dropped", share=math.nan, **values)
    assert not NON_FINITE.search(text) and m.t("common.not_available") in text
    with pytest.warns(NonFiniteValue):
        lines = m.t_list("engine.comparison.note", notes=np.float64("inf"))
    assert not NON_FINITE.search(lines[0])


def test_messages_warning_is_an_error_under_pytest():
    with pytest.raises(NonFiniteValue):
        Messages("en").t("engine.comparison.rows_dropped", side="r", table="t", share=math.inf, detail="")


def test_logging_is_quiet_for_intact_data(text_pair, caplog):
    caplog.set_level(logging.WARNING)
    assert_trustworthy(analyse(text_pair[0]), caplog)


def test_a_cluster_summary_names_the_rank_that_lost_rows(tmp_path):
    header = "Step,Type,Index,Computing,Communication(Not Overlapped),Free"
    rows = ["1,rank,0,80.5,60.0,9.0", "1,rank,1,80.5,60.0,-9.0"]
    path = tmp_path / "cluster_step_trace_time.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    by_rank, _ = read_cluster_step_trace(path)
    assert len(by_rank[0]) == 1 and not by_rank[0].attrs.get("warnings")
    assert len(by_rank[1]) == 0
    assert by_rank[1].attrs["warnings"] == [f"{path} (rank 1): 1 step_trace row with a negative Free dropped"]
