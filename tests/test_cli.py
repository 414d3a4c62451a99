"""The command line: exit codes 0 / 2 / 1, one-line errors, report paths on stdout, progress on stderr."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from advisor import cli
from advisor.report.sample import sample_report

from .engine_fixtures import DB_CORPUS, PROJECT_ROOT, corpus_path, demo, rank_dir, shifted_copy


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_then_analyze(tmp_path, capsys):
    code, out, _ = _run(capsys, "demo", tmp_path / "prof", "--ranks", "3", "--steps", "4-5")
    # What it wrote, and the command to run next.
    assert code == 0 and out.splitlines() == [
        f"Wrote a demo profile to {tmp_path / 'prof'}: 3 ranks, steps 4–5, with problems built in to find.",
        f"Analyse it:  performance-advisor analyze {tmp_path / 'prof'}",
    ]
    code, out, err = _run(
        capsys, "analyze", tmp_path / "prof", "--output", tmp_path / "out", "--progress", "plain"
    )
    assert code == 0
    paths = [Path(line) for line in out.split("\n\n")[0].splitlines()]  # the paths first, then a summary
    assert [p.suffix for p in paths] == [".html", ".xlsx", ".json"]
    assert all(p.exists() and p.parent == tmp_path / "out" for p in paths)
    assert "[0/5] reading rank 1/3" in err and "[2/5] reading rank 3/3" in err and "running checks" in err
    data = json.loads(paths[2].read_text())
    assert data["input"]["ranks"] == [0, 1, 2] and data["input"]["steps"] == [4, 5]


def test_format_and_quiet(tmp_path, capsys):
    root, _ = demo(tmp_path)
    code, out, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--format", "json", "--quiet")
    assert code == 0 and err == "" and len(out.splitlines()) == 1 and out.strip().endswith(".json")


def test_progress_json_protocol(tmp_path, capsys):
    root, _ = demo(tmp_path)
    code, out, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--progress", "json")
    assert code == 0
    events = [json.loads(line) for line in err.splitlines()]
    assert events[0]["event"] == "progress" and {"stage", "done", "total"} <= set(events[0])
    assert events[-1]["event"] == "result"
    assert set(events[-1]["reports"]) == {"html", "xlsx", "json"}
    assert events[-1]["reports"]["json"] == out.splitlines()[2]
    assert out.splitlines()[3] == ""  # then the summary


def test_missing_input_exits_2_with_one_line(tmp_path, capsys):
    code, out, err = _run(capsys, "analyze", tmp_path / "nope", "--output", tmp_path / "o")
    assert code == 2 and out == ""
    assert err == f"performance-advisor: error: {tmp_path / 'nope'}: no such file or directory\n"


def test_error_event_in_json_mode(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _run(
        capsys, "analyze", tmp_path / "empty", "--progress", "json", "--output", tmp_path / "o"
    )
    assert code == 2
    error = next(json.loads(line) for line in err.splitlines() if line.startswith("{"))
    assert error["event"] == "error" and "not profiling data" in error["message"]


def test_a_folder_of_two_runs_exits_2_with_one_line(tmp_path, capsys):
    demo(tmp_path / "runs", "profiling_dir1")
    demo(tmp_path / "runs", "profiling_dir1_baseline", seed=1)
    code, out, err = _run(capsys, "analyze", tmp_path / "runs", "--output", tmp_path / "o", "--quiet")
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    prefix = f"performance-advisor: error: {tmp_path / 'runs'}: "
    assert err.startswith(prefix + "holds the rank folders of 2 different profiling runs (the same rank ids)")
    assert "profiling_dir1/ (ranks 0–1" in err and "profiling_dir1_baseline/ (ranks 0–1" in err
    assert not (tmp_path / "o").exists()


def _with_an_earlier_window(tmp_path):
    """A demo whose rank 0 also left an earlier profiling window: discovery keeps the latest and warns."""
    root, _ = demo(tmp_path)
    rank0 = min(p for p in root.iterdir() if p.is_dir())
    shifted_copy(rank0, root, -86400)
    return root


def test_quiet_still_prints_warnings(tmp_path, capsys):
    root = _with_an_earlier_window(tmp_path)
    code, out, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--quiet")
    assert code == 0
    lines = err.splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines)
    assert any("2 profiling windows of one process" in line for line in lines)
    report = json.loads(Path(out.splitlines()[2]).read_text())
    assert [f"warning: {w}" for w in report["warnings"]] == lines


def test_warnings_are_events_in_json_mode(tmp_path, capsys):
    root = _with_an_earlier_window(tmp_path)
    code, _, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--progress", "json", "--quiet")
    assert code == 0
    events = [json.loads(line) for line in err.splitlines()]
    assert {e["event"] for e in events} == {"warning", "result"}
    assert any("profiling windows" in e["message"] for e in events if e["event"] == "warning")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--processes", "9"], "advisor_analyze_processes must be between 1 and 8"),
        (["--format", "pdf"], "format must be one of html, xlsx, json, ipynb"),
        (["--dimensions", "gpu"], "analysis_dimensions must be one of"),
        (["--cann-version", "5.0"], "cann_version must be one of"),
        (["--language", "fr"], "language must be one of en, zh"),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, flags, message):
    root, _ = demo(tmp_path)
    code, _, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", *flags)
    assert code == 2 and err.startswith("performance-advisor: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_unknown_flag_is_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze", ".", "--bogus"])
    assert exc.value.code == 2


def test_output_is_a_file_exits_2(tmp_path, capsys):
    root, _ = demo(tmp_path)
    (tmp_path / "f").write_text("x")
    code, _, err = _run(capsys, "analyze", root, "--output", tmp_path / "f", "--quiet")
    assert code == 2 and "output path exists and is not a directory" in err


def test_truncated_trace_exits_2_naming_the_file(tmp_path, capsys):
    folder = rank_dir(tmp_path, "x_ascend_pt", trace='[{"ph": "X"')
    code, _, err = _run(capsys, "analyze", folder, "--output", tmp_path / "o", "--quiet")
    assert code == 2 and "trace_view.json: truncated or invalid JSON at byte" in err


def test_db_corpus_is_analysed(tmp_path, capsys):
    code, out, err = _run(capsys, "analyze", corpus_path(DB_CORPUS), "--output", tmp_path / "o", "--quiet")
    assert code == 0, err
    report = json.loads(Path(next(line for line in out.splitlines() if line.endswith(".json"))).read_text())
    assert report["input"]["export"] == "db" and report["input"]["steps"] == [50]


def test_internal_error_exits_1(tmp_path, capsys, monkeypatch):
    import advisor.engine

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(advisor.engine, "run_analysis", broken)
    root, _ = demo(tmp_path)
    code, _, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--quiet")
    assert code == 1
    assert (
        err
        == "performance-advisor: internal error: RuntimeError: boom (rerun with --debug for the traceback)\n"
    )
    code, _, err = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--quiet", "--debug")
    assert code == 1 and "Traceback" in err


def test_demo_refuses_non_empty_dest(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("keep me")
    code, _, err = _run(capsys, "demo", tmp_path / "d")
    assert code == 2 and "already exists and is not empty" in err
    code, _, err = _run(capsys, "demo", tmp_path / "e", "--steps", "5-3")
    assert code == 2 and "steps must look like" in err


def test_demo_is_deterministic(tmp_path, capsys):
    for name in ("a", "b"):
        assert _run(capsys, "demo", tmp_path / name, "--seed", "7")[0] == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
    csv = next((tmp_path / "a").glob("*/ASCEND_PROFILER_OUTPUT/step_trace_time.csv")).read_bytes()
    assert csv.startswith(b"Step,Computing,") and b"\r\n" in csv and b",Preparing\r\n" in csv


def test_input_is_left_untouched(tmp_path, capsys):
    root, _ = demo(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert _run(capsys, "analyze", root, "--output", tmp_path / "o", "--quiet")[0] == 0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_python_dash_m(tmp_path):
    root, _ = demo(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "advisor",
            "analyze",
            str(root),
            "--output",
            str(tmp_path / "o"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(".json")
    assert "[0/4] reading rank 1/2" in result.stderr  # a pipe gets plain lines


def test_terminal_progress_bar():
    import io

    from advisor.progress import BarReporter, make_reporter

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    reporter = make_reporter("auto", stream=stream)
    assert isinstance(reporter, BarReporter)
    reporter("reading rank 1/2", 1, 4)
    reporter("done", 4, 4)
    text = stream.getvalue()
    assert text.startswith("\r[#######") and "1/4 reading rank 1/2" in text and text.endswith("\n")
    assert make_reporter("auto", quiet=True, stream=stream).__class__.__name__ == "Reporter"


def test_step_option(tmp_path, capsys):
    root, _ = demo(tmp_path)
    code, out, _ = _run(capsys, "analyze", root, "--step", "14", "--output", tmp_path / "o", "--quiet")
    report = json.loads(Path(next(line for line in out.splitlines() if line.endswith(".json"))).read_text())
    assert code == 0 and report["input"]["steps"] == [14]
    code, _, err = _run(capsys, "analyze", root, "--step", "99", "--output", tmp_path / "o", "--quiet")
    assert code == 2 and "step 99 was not profiled" in err
    code, _, err = _run(capsys, "analyze", root, "--step", "x", "--output", tmp_path / "o", "--quiet")
    assert code == 2 and "step must be an integer" in err


def _summary(out: str) -> list[str]:
    """The ranked causes: the lines after the report paths, the blank line and what was analysed."""
    return out.split("\n\n", 1)[1].splitlines()[1:]


def test_analyze_prints_a_ranked_summary_after_the_paths(tmp_path, capsys, monkeypatch):
    root, _ = demo(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, _ = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--format", "json")
    report = json.loads(Path(out.splitlines()[0]).read_text())
    ranked = [f for f in report["findings"] if not f["counted_in"] and f["check"] != "overall.summary"]
    lines = _summary(out)
    assert code == 0 and len(lines) == len(ranked) > 0
    analysed = out.split("\n\n", 1)[1].splitlines()[0]
    assert analysed == report["input"]["description"] == "2 ranks, text export, steps 12–14"
    for line, finding in zip(lines, ranked, strict=True):
        gain, share = finding["estimated_gain_us"] / 1000, finding["share_of_step"]
        assert (
            line == f"{finding['priority'].upper():<6}  {finding['title']} ({gain:,.1f} ms/step, {share:.0%})"
        )
    assert "\033[" not in out  # not a terminal: plain text
    code, out, _ = _run(capsys, "analyze", root, "--output", tmp_path / "o", "--format", "json", "--quiet")
    assert code == 0 and len(out.splitlines()) == 1  # --quiet: the path only


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_summary_colours_only_on_a_terminal_without_no_color(monkeypatch):
    report = sample_report(4)
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = _Tty()
    cli.print_summary(report, tty)
    assert "\033[1;31mHIGH  \033[0m  " in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Tty()
    cli.print_summary(report, plain)
    assert "\033[" not in plain.getvalue() and "\nHIGH    " in plain.getvalue()


def test_summary_lists_ten_causes_and_counts_the_rest():
    report = sample_report(4)
    ranked = [f for f in report.sorted_findings() if f.ranked]
    extra = [replace(ranked[-1], check=f"schedule.extra_{i}", title=f"extra {i}") for i in range(5)]
    report = replace(report, findings=[*report.findings, *extra])
    stream = io.StringIO()
    cli.print_summary(report, stream)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["", "4 ranks, text export, steps 12–14"] and len(lines) == 2 + cli.SUMMARY_ROWS + 1
    assert lines[-1] == f"… and {len(ranked) + 5 - cli.SUMMARY_ROWS} more in the report"
    assert not any("counted" in line for line in lines)  # only causes, one row each
    zh = io.StringIO()
    cli.print_summary(replace(report, language="zh"), zh)
    assert zh.getvalue().splitlines()[1] == "4 个 rank，文本格式导出，step 12–14"
    assert zh.getvalue().splitlines()[2].startswith("高  ")


def test_summary_without_findings():
    report = replace(sample_report(2), findings=[])
    stream = io.StringIO()
    cli.print_summary(report, stream)
    assert stream.getvalue() == "\n2 ranks, text export, steps 12–14\nNo findings.\n"
