"""The Python API: analyse a profile in a notebook and get DataFrames, figures and rich displays.

```python
import advisor
report = advisor.analyze("./profiling_dir1", compare=None, dimensions=None, processes=None, language="en")
report                           # header, "what to fix first", the step chart
report.findings                  # one row per finding, in the report's order
report.findings_for("schedule")  # Finding objects of a dimension or a check id
report.metrics.step_breakdown()  # the numbers behind overall.summary, per rank and step
report.figure("step_breakdown")  # the plotly figure the HTML report shows
report.save("out/", formats=("html", "xlsx", "json"))
advisor.open_profile(path).tables["step_trace"]  # a normalised table, every rank
```

It drives the same engine, checks, messages and report model as the command line
(`advisor.analysis.analyse_input`, `advisor.engine.write_reports`): a finding here is a finding of the
JSON report. Bad input raises InputError, shown in a notebook as its one line.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .analysis import analyse_input, training_log_input
from .engine import write_reports
from .formats import discover, load_table
from .options import (
    DIMENSIONS,
    LANGUAGES,
    REPORT_FORMATS,
    Deployment,
    JobParameters,
    default_process_count,
    parse_choice,
    parse_model,
    parse_options,
)
from .progress import PlainReporter, Reporter
from .ranges import number_ranges
from .report import charts
from .report.messages import Messages
from .report.model import Finding as ReportFinding
from .report.model import Report

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

    from .model import ProfileSet

__all__ = ["Analysis", "Finding", "Metrics", "Profile", "analyze", "open_profile"]

FINDING_COLUMNS = (
    "check",
    "dimension",
    "priority",
    "title",
    "ranks",
    "step",
    "estimated_gain_us",
    "share_of_step",
    "counted_in",  # the checks whose cause explains this finding (then not ranked again)
)
# The per-rank tables the cluster checks read, by the Metrics method that returns them.
METRIC_TABLES = {
    "step_trace": "step_trace",
    "communication_bandwidth": "comm_bandwidth",
    "communication_matrix": "comm_matrix",
    "communication_ops": "comm_ops",
}


def _ranks_joined(frames: Iterable[tuple[int, pd.DataFrame]]) -> pd.DataFrame:
    """Each rank's rows of one table, in one frame with the `rank` column first (empty without any)."""
    tagged = [frame.assign(rank=rank) for rank, frame in frames]
    if not tagged:
        return pd.DataFrame()
    joined = pd.concat(tagged, ignore_index=True)
    return joined[["rank", *(c for c in joined.columns if c != "rank")]]


def _figure(data: Mapping[str, Any]) -> Figure:
    from plotly.graph_objects import Figure

    return Figure(data)


def _table_html(frame: pd.DataFrame, caption: str | None = None) -> str:
    """An escaped HTML table (every cell and header is text from the profile)."""
    table = frame.to_html(index=False, escape=True, border=0, na_rep="")
    if caption is None:
        return table
    return f"<p><b>{html.escape(caption)}</b></p>{table}"


class Finding:
    """One finding of the report: its fields, its evidence as DataFrames, its figure."""

    def __init__(self, finding: ReportFinding, language: str) -> None:
        self._finding = finding
        self._messages = Messages(language)

    def __getattr__(self, name: str) -> Any:
        # check, dimension, priority, title, description, suggestions, ranks, step,
        # estimated_gain_us, share_of_step, gain_basis, counted_in: the report model's fields.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._finding, name)

    def __repr__(self) -> str:
        return f"<Finding {self._finding.check} ({self._finding.priority}): {self._finding.title}>"

    @cached_property
    def evidence(self) -> dict[str, pd.DataFrame]:
        """The tables backing the finding (the report's evidence tables), by their name."""
        tables: dict[str, pd.DataFrame] = {}
        for item in self._finding.evidence:
            name, n = item.name, 1
            while name in tables:  # two tables of one name: the second is "name (2)"
                n += 1
                name = f"{item.name} ({n})"
            tables[name] = pd.DataFrame(item.rows, columns=list(item.columns))
        return tables

    def figure(self) -> Figure | None:
        """The chart the HTML report draws from this finding's evidence (the bandwidth matrix of a
        slow link), or None when the report draws none for it."""
        figures = charts.link_figures([self._finding], self._messages)
        return _figure(figures[0]) if figures else None

    def _repr_html_(self) -> str:
        m, f = self._messages, self._finding
        gain = (
            f"{f.estimated_gain_us / 1000:,.3f} ms" + (f" ({f.share_of_step:.1%})" if f.share_of_step else "")
            if f.estimated_gain_us is not None
            else m.t("report.finding.gain_none")
        )
        facts = [
            (m.t("report.fix_first.priority"), m.t(f"report.priority.{f.priority}")),
            (m.t("report.fix_first.dimension"), f.dimension),
            (m.t("report.fix_first.ranks"), number_ranges(f.ranks) or m.t("report.fix_first.all_ranks")),
            (m.t("report.fix_first.gain"), gain),
        ]
        parts = [
            f"<h4>{html.escape(f.title)} <code>{html.escape(f.check)}</code></h4>",
            "<p>" + " · ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in facts) + "</p>",
            f"<p>{html.escape(f.description)}</p>",
        ]
        if f.suggestions:
            items = "".join(f"<li>{html.escape(s)}</li>" for s in f.suggestions)
            parts.append(f"<ul>{items}</ul>")
        parts.extend(_table_html(frame, name) for name, frame in self.evidence.items())
        return "<div>" + "".join(parts) + "</div>"


class Metrics:
    """The tables the checks computed or read, as DataFrames (one row per rank and step where the
    table is per step). They are the engine's own objects' values, not a recomputation:

    - `step_breakdown()`: overall.summary's figures per rank and step (µs): step, computing,
      communication not overlapped, free; the step charts draw these.
    - `step_trace()`: the step_trace table the cluster checks read (every column the format gives).
    - `communication_bandwidth()`, `communication_matrix()`, `communication_ops()`: the
      communication tables the cluster checks (slow link, retransmission) read; empty when the data
      has none or those checks did not run.
    """

    def __init__(self, report: Report) -> None:
        self._report = report

    def step_breakdown(self) -> pd.DataFrame:
        rows = self._report.summary.get("per_rank") or []
        columns = ["rank", "step", "step_us", "computing_us", "communication_not_overlapped_us", "free_us"]
        return pd.DataFrame(rows, columns=columns)

    def _per_rank(self, table: str) -> pd.DataFrame:
        by_rank = sorted(self._report.rank_tables.items())
        return _ranks_joined((rank, tables[table]) for rank, tables in by_rank if table in tables)

    def step_trace(self) -> pd.DataFrame:
        return self._per_rank(METRIC_TABLES["step_trace"])

    def communication_bandwidth(self) -> pd.DataFrame:
        return self._per_rank(METRIC_TABLES["communication_bandwidth"])

    def communication_matrix(self) -> pd.DataFrame:
        return self._per_rank(METRIC_TABLES["communication_matrix"])

    def communication_ops(self) -> pd.DataFrame:
        return self._per_rank(METRIC_TABLES["communication_ops"])


class Analysis:
    """What `analyze` returns: the report of one analysis, as DataFrames, figures and displays."""

    def __init__(self, report: Report) -> None:
        self.report = report  # the report model the CLI renders (report.to_json() is the JSON report)
        self.metrics = Metrics(report)
        self._messages = Messages(report.language)

    def __repr__(self) -> str:
        return f"<Analysis of {self.report.input.path}: {len(self.report.findings)} findings>"

    @cached_property
    def _findings(self) -> list[Finding]:
        return [Finding(f, self.report.language) for f in self.report.sorted_findings()]

    @property
    def findings(self) -> pd.DataFrame:
        """One row per finding, in the JSON report's order (priority, then the largest gain)."""
        rows = [{column: getattr(f, column) for column in FINDING_COLUMNS} for f in self._findings]
        frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
        return frame.astype({"step": "Int64", "estimated_gain_us": "float64", "share_of_step": "float64"})

    @property
    def training(self) -> pd.DataFrame | None:
        """The training log's series, one row per logged step (step, loss, loss_smooth, lr, grad_norm,
        step_time_s, tokens_per_s_per_device, samples_per_s, …, as the JSON's `training.series`);
        None without a log. `report.training` is the whole JSON `training` object."""
        if self.report.training is None:
            return None
        return pd.DataFrame(self.report.training["series"])

    def findings_for(self, dimension_or_check: str) -> list[Finding]:
        """The findings of a dimension ("schedule") or of one check ("schedule.gc"), in order."""
        return [f for f in self._findings if dimension_or_check in (f.dimension, f.check)]

    def figure(self, name: str) -> Figure | None:
        """The report's chart `name` (one of charts.FIGURES: step_breakdown, steps, rank_heatmap) as
        a plotly figure; None where the report draws none (one step, too few ranks)."""
        draw = charts.FIGURES.get(name)
        if draw is None:
            raise ValueError(f"figure must be one of {', '.join(charts.FIGURES)}; got {name!r}")
        data = draw(self.report, self._messages)
        return _figure(data) if data is not None else None

    def save(self, folder: str | Path, formats: Iterable[str] = REPORT_FORMATS) -> dict[str, Path]:
        """Write the reports (html, xlsx, json, ipynb) into `folder` as the CLI does: all or none,
        never overwriting a file. Returns their paths by format."""
        return write_reports(self.report, folder, tuple(formats))

    def _repr_html_(self) -> str:
        m, report = self._messages, self.report
        header = [
            f"<h3>{html.escape(m.t('report.title'))}</h3>",
            f"<p>{html.escape(report.description())}</p>",
            f"<p><code>{html.escape(report.input.path)}</code></p>",
        ]
        header.extend(f"<p>⚠ {html.escape(w)}</p>" for w in report.warnings)
        ranked = [f for f in self._findings if f.ranked]
        header.append(f"<h4>{html.escape(m.t('report.fix_first.title'))}</h4>")
        if not ranked:
            header.append(f"<p>{html.escape(m.t('report.fix_first.none'))}</p>")
        else:
            frame = pd.DataFrame(
                {
                    m.t("report.fix_first.priority"): [m.t(f"report.priority.{f.priority}") for f in ranked],
                    m.t("report.fix_first.finding"): [f.title for f in ranked],
                    m.t("report.fix_first.dimension"): [f.dimension for f in ranked],
                    m.t("report.fix_first.ranks"): [
                        number_ranges(f.ranks) or m.t("report.fix_first.all_ranks") for f in ranked
                    ],
                    m.t("report.fix_first.gain"): [
                        round(f.estimated_gain_us / 1000, 3) if f.estimated_gain_us is not None else None
                        for f in ranked
                    ],
                }
            )
            header.append(_table_html(frame))
        return "<div>" + "".join(header) + "</div>"

    def _ipython_display_(self) -> None:
        """In a notebook: the header and "what to fix first", then the step chart (plotly's own
        display, so that JupyterLab draws it interactively)."""
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        chart = self.figure("step_breakdown")
        if chart is not None:
            display(chart)


class Profile:
    """A profile's discovered ranks and its normalised tables (`tables[name]`: every rank's rows,
    with a `rank` column; read on first use)."""

    def __init__(self, profile: ProfileSet) -> None:
        self.profile = profile
        self.tables = _ProfileTables(profile)

    @property
    def ranks(self) -> list[int]:
        return [r.rank for r in self.profile.ranks]

    @property
    def steps(self) -> list[int]:
        return list(self.profile.steps)

    def table(self, name: str, rank: int) -> pd.DataFrame:
        """Table `name` of one rank (InputError naming the file when the data cannot give it)."""
        found = [r for r in self.profile.ranks if r.rank == rank]
        if not found:
            raise KeyError(f"no rank {rank} in {self.profile.root} (ranks {number_ranges(self.ranks)})")
        return load_table(name, found[0])

    def __repr__(self) -> str:
        return f"<Profile {self.profile.root}: {self.profile.format}, ranks {number_ranges(self.ranks)}>"


class _ProfileTables(Mapping[str, pd.DataFrame]):
    def __init__(self, profile: ProfileSet) -> None:
        from .formats import format_named

        self._profile = profile
        names = {n for r in profile.ranks for n in format_named(r.format).tables()}
        self._names = sorted(names)
        self._read: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(f"no table {name!r}; this profile has {', '.join(self._names)}")
        if name not in self._read:
            ranks = self._profile.ranks
            self._read[name] = _ranks_joined((rank.rank, load_table(name, rank)) for rank in ranks)
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<tables {', '.join(self._names)}>"


class _CallbackReporter(Reporter):
    """Progress events to a function `(stage, done, total)`; warnings to stderr."""

    def __init__(self, progress: Callable[[str, int, int], None]) -> None:
        super().__init__()
        self._progress = progress

    def __call__(self, stage: str, done: int, total: int) -> None:
        self._progress(stage, done, total)


class _WidgetReporter(Reporter):
    """A progress bar widget in the cell that runs the analysis."""

    def __init__(self) -> None:
        super().__init__()
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.IntProgress(min=0, max=1, value=0)
        self._label = ipywidgets.Label()
        display(ipywidgets.HBox([self._bar, self._label]))

    def __call__(self, stage: str, done: int, total: int) -> None:
        self._bar.max = max(total, 1)
        self._bar.value = min(done, self._bar.max)
        self._label.value = f"{done}/{total} {stage}"


def _reporter(progress: bool | Callable[[str, int, int], None]) -> Reporter:
    """A progress bar widget where ipywidgets is installed, else "[done/total] stage" lines on
    stdout (the cell's output); a function gets the events itself; False: warnings only."""
    if callable(progress):
        return _CallbackReporter(progress)
    if not progress:
        return Reporter()
    try:
        return _WidgetReporter()
    except ImportError:
        return PlainReporter(sys.stdout)


def analyze(
    path: str | Path,
    compare: str | Path | None = None,
    dimensions: Sequence[str] | None = None,
    processes: int | None = None,
    language: str = "en",
    *,
    step: int | None = None,
    scheduler: str | None = None,
    training_log: str | Path | None = None,
    devices: int | None = None,
    seq_length: int | None = None,
    cann_version: str = "",
    torch_version: str = "",
    progress: bool | Callable[[str, int, int], None] = True,
) -> Analysis:
    """Analyse the profile at `path` (an Ascend rank folder or a folder of them, a PyTorch profiler
    trace or a folder of them, obs://…) as `performance-advisor analyze` does, against the baseline
    `compare` when given; `dimensions` among computation, communication, schedule, memory,
    dataloader, training (default all); `processes` worker processes (default: one per usable core, up
    to `options.DEFAULT_PROCESSES_CAP`); `scheduler` a Dask scheduler address
    (like --scheduler); `training_log` a training log read beside the profile (like --training-log;
    `path` may also be a training log alone), with `devices` and `seq_length` where the log does not
    state them. InputError (one line) for unusable input or options. The kernel's Interrupt
    stops the analysis (KeyboardInterrupt; the worker processes are stopped)."""
    options = parse_options(
        {
            "analysis_dimensions": list(dimensions) if dimensions is not None else list(DIMENSIONS),
            "advisor_analyze_processes": default_process_count() if processes is None else processes,
            "cann_version": cann_version,
            "torch_version": torch_version,
        }
    )
    language = parse_choice("language", language, LANGUAGES)
    job = parse_model(
        JobParameters,
        {"training_log": str(training_log or ""), "devices": devices, "seq_length": seq_length},
    )
    compare_path = str(compare) if compare is not None else None
    given_log = training_log_input(
        str(path),
        job.training_log,
        devices=job.devices,
        seq_length=job.seq_length,
        compare=compare_path,
        step=step,
    )
    reporter = _reporter(progress)
    report = analyse_input(
        str(path),
        compare_path,
        options=options,
        language=language,
        reporter=reporter,
        step=step,
        deployment=Deployment(dask_scheduler_address=scheduler),
        training_log=given_log,
    )
    return Analysis(report)


def open_profile(path: str | Path) -> Profile:
    """The profile at `path` (a local folder or trace file), discovered as an analysis would, with
    its normalised tables. InputError (one line) when it is no profiling data."""
    return Profile(discover(path))
