"""Plan and run an analysis: discover, load per-rank tables, run checks, build the Report."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import outputs
from .checks.catalogue import applicable_dimensions, unimplemented
from .checks.cluster_slow_rank import thresholds
from .checks.common import mean_step_us, own_time_us, step_times_us
from .checks.links import link_causes
from .checks.registry import (
    SCOPES,
    CheckResult,
    CheckSpec,
    ClusterContext,
    ComparisonContext,
    RankContext,
    all_checks,
    selected_checks,
)
from .checks.registry import (
    NotEvaluated as CheckNotEvaluated,
)
from .errors import InputError, OutputError, cannot
from .formats import data_folder_at, data_name, discover, load_table, reader_modules, report_input_fields
from .formats.sanity import INCOMPLETE, lost_share
from .formats.trace_split import spare_processes
from .model import ProfileSet, RankInfo, describe_steps
from .options import (
    DIMENSIONS,
    NOTEBOOK_FORMAT,
    OUTPUT_FORMATS,
    REPORT_FORMATS,
    AnalysisOptions,
    Deployment,
    version_hints,
)
from .report.messages import Messages
from .report.model import (
    PRIORITIES,
    TRAINING_LOG_KIND,
    Evidence,
    Finding,
    InputInfo,
    NotApplicable,
    NotEvaluated,
    Report,
)
from .storage.config import is_object_url
from .tool_version import __version__
from .worker_pool import worker_pool, worker_start_s

ProgressFn = Callable[[str, int, int], None]
# The comparison checks report differences from 0.5 % (kernels) or 1 % (host APIs) of the step up: a
# side that lacks more than 1 % of a compared table's rows could make or hide such a difference by
# itself, so the comparison is not evaluated; below that, its findings say what was missing.
MAX_LOST_SHARE = 0.01
_log = logging.getLogger(__name__)

if TYPE_CHECKING:  # imported with distributed, only on the Dask path
    from .dask_engine import DaskRun, StoredRanks


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class RankOutcome:
    """What one rank's worker sends back: the (small) tables the cluster checks need, why tables
    could not be read, and what the rank checks found. The rank's big tables stay in the worker."""

    rank: int
    tables: dict[str, pd.DataFrame]
    errors: dict[str, str]
    results: list[tuple[str, CheckResult | NotEvaluated]]
    warnings: list[str]
    rows_read: int


def needed_tables(dimensions: Iterable[str]) -> set[str]:
    """The tables the checks of `dimensions` (plus the always-run ones) need: what to download of a
    profile in object storage (the formats name the files of each table, GE graph dumps included)."""
    specs = [spec for spec in selected_checks(tuple(dimensions)) if spec.scope != "training"]
    return {"step_trace", *(name for spec in specs for name in spec.needs)}


def load_rank_tables(rank: RankInfo, names: Iterable[str]) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Tables of one rank, and a one-line reason for each table that could not be read."""
    tables: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            tables[name] = load_table(name, rank)
        except InputError as exc:
            errors[name] = str(exc)
        except OSError as exc:  # the user's data: a file the reader could not open or read
            errors[name] = cannot("read", exc.filename or rank.path, exc)
        except Exception as exc:  # a reader bug on odd data must not sink the other ranks
            errors[name] = _one_line(
                f"internal error reading {name} of {rank.path}: {type(exc).__name__}: {exc}"
            )
    return tables, errors


def analyse_rank(
    profile: ProfileSet,
    rank: RankInfo,
    cluster_names: Sequence[str],
    rank_check_ids: Sequence[str],
    options: AnalysisOptions,
    language: str,
    step: int | None,
    load: Sequence[str] = (),
) -> RankOutcome:
    """Load one rank's tables, run the rank checks on them and keep only what the cluster needs
    (`load`: more tables to read, for benchmarks).

    Runs in worker processes: everything returned is picklable (errors are plain strings)."""
    specs = {spec.id: spec for spec in all_checks()}
    chosen = [specs[check_id] for check_id in rank_check_ids]
    names = sorted({*cluster_names, *load, *(n for spec in chosen for n in spec.tables)})
    tables, errors = load_rank_tables(rank, names)
    if step is not None:
        tables = select_step(tables, step)
    messages = Messages(language)
    results: list[tuple[str, CheckResult | NotEvaluated]] = []
    for spec in chosen:
        absent = sorted(n for n in spec.needs if n not in tables)
        if absent:
            reason = errors.get(absent[0], f"table {absent[0]} unavailable")
            results.append((spec.id, NotEvaluated(spec.id, _one_line(reason))))
            continue
        ctx = RankContext(
            profile, rank, {n: tables[n] for n in spec.tables if n in tables}, options, messages
        )
        results.append((spec.id, _run_one(spec, ctx, messages)))
    return RankOutcome(
        rank=rank.rank,
        tables={n: tables[n] for n in cluster_names if n in tables},
        errors=errors,
        results=results,
        warnings=table_warnings({rank.rank: tables}),
        rows_read=sum(len(frame) for frame in tables.values()),
    )


# Reads tables of a rank: load_rank_tables here, or on the Dask worker that holds a stored rank.
TableLoader = Callable[[RankInfo, Sequence[str]], tuple[dict[str, pd.DataFrame], dict[str, str]]]


class OnDemandTables(Mapping[str, pd.DataFrame]):
    """A rank's tables as a cluster check sees them: those the rank sent, and the check's on-demand
    tables, read by `load` when first looked up; one that cannot be read is absent."""

    def __init__(
        self, sent: Mapping[str, pd.DataFrame], rank: RankInfo, on_demand: frozenset[str], load: TableLoader
    ) -> None:
        self._sent = sent
        self._rank = rank
        self._on_demand = on_demand
        self._load = load
        self._read: dict[str, pd.DataFrame | None] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name in self._sent:
            return self._sent[name]
        if name not in self._on_demand:
            raise KeyError(name)
        if name not in self._read:
            try:
                self._read[name] = self._load(self._rank, [name])[0].get(name)
            except Exception:  # the check then lacks a fact; a reader failing must not sink it
                self._read[name] = None
        frame = self._read[name]
        if frame is None:
            raise KeyError(name)
        return frame

    def __iter__(self) -> Iterator[str]:
        yield from self._sent
        yield from (name for name, frame in self._read.items() if frame is not None)

    def __len__(self) -> int:
        return len(self._sent) + sum(frame is not None for frame in self._read.values())


# Up to this much data, the ranks send every table the cluster and comparison checks may read, not
# only those the cluster checks need: the comparison's two ranks are known only once every rank is
# read, and the cluster checks read some tables on demand, so this process would read those ranks a
# second time (their files were parsed in the workers, and tables of small files are not cached:
# cache.py). Kept until the checks have run, they are a fraction of this.
SEND_EVERY_TABLE_MAX_MB = 64.0


def sent_first(outcomes: Sequence[RankOutcome], load: TableLoader) -> TableLoader:
    """`load`, answered from the tables the ranks sent where they hold every table asked for."""
    sent = {outcome.rank: outcome.tables for outcome in outcomes}

    def load_sent_first(
        rank: RankInfo, names: Sequence[str]
    ) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
        tables = sent.get(rank.rank, {})
        if all(name in tables for name in names):
            return {name: tables[name] for name in names}, {}
        return load(rank, names)

    return load_sent_first


def _read_anything(outcome: RankOutcome, cluster_names: Sequence[str]) -> bool:
    """Whether a rank gave a table the cluster checks need or a rank check's result (the tables a small
    profile's ranks send besides, which may be empty when their files are absent, do not count)."""
    if any(name in outcome.tables for name in cluster_names):
        return True
    return any(isinstance(result, CheckResult) for _, result in outcome.results)


def _tables_for(spec: CheckSpec, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What a check sees: its needed tables and those of its optional ones that could be read."""
    return {name: tables[name] for name in spec.tables if name in tables}


def _one_line(text: str) -> str:
    return " ".join(text.split())


# A pool pays off when the ranks' work is at least this many times what starting one of its workers
# costs (`worker_pool`: a fork, ~0.03 s; a fresh interpreter that imports pandas and the readers,
# ~1 s). The work estimate: a fixed cost per rank (table loads and ~25 rank checks on a small rank:
# ~0.3 s) plus its data at the whole pipeline's pace.
POOL_WORK_PER_WORKER_START = 2.0
RANK_FIXED_WORK_S = 0.3
RANK_DATA_MB_PER_S = 50.0


def rank_data_bytes(rank: RankInfo) -> int:
    """The size of the files discovery found for `rank` (the file itself for a one-file rank)."""
    paths = [rank.path / rel for rel in rank.files] if rank.files else [rank.path]
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):  # a file that went away: its reader says so, not this
            total += path.stat().st_size if path.is_file() else 0
    return total


def data_mb(ranks: Sequence[RankInfo]) -> float:
    """The size in MB of the files discovery found for `ranks` (stat calls: computed once per run)."""
    return sum(map(rank_data_bytes, ranks)) / 1e6


def pool_pays_off(ranks: int, ranks_mb: float, worker_start_s: float) -> bool:
    """Whether reading and checking `ranks` ranks of `ranks_mb` MB in all takes long enough to pay for
    starting worker processes that each cost `worker_start_s` to start."""
    work_s = ranks * RANK_FIXED_WORK_S + ranks_mb / RANK_DATA_MB_PER_S
    return work_s >= POOL_WORK_PER_WORKER_START * worker_start_s


def analyse_ranks(
    profile: ProfileSet,
    cluster_names: Sequence[str],
    rank_check_ids: Sequence[str],
    options: AnalysisOptions,
    *,
    language: str = "en",
    step: int | None = None,
    progress: ProgressFn = _no_progress,
    total: int = 1,
    load: Sequence[str] = (),
    dask: DaskRun | None = None,
    stored: StoredRanks | None = None,
    ranks_mb: float,
) -> list[RankOutcome]:
    """`analyse_rank` for every rank: as tasks on the Dask scheduler of the analysis's `dask` client
    (the workers reading `stored` ranks from object storage themselves), else in
    `options.advisor_analyze_processes` local worker processes, or in this process when the ranks'
    work (`ranks_mb`: the size of their files) is too small to pay for starting them."""
    n = len(profile.ranks)
    outcomes: list[RankOutcome] = []
    args = (cluster_names, rank_check_ids, options, language, step, load)
    if dask is not None:
        from .dask_engine import analyse_ranks_on_dask

        finished = analyse_ranks_on_dask(dask, analyse_rank, profile, args, stored)
    elif options.advisor_analyze_processes > 1 and n > 1 and pool_pays_off(n, ranks_mb, worker_start_s()):
        finished = _analyse_ranks_in_pool(profile, args, min(options.advisor_analyze_processes, n))
    else:
        finished = (analyse_rank(profile, rank, *args) for rank in profile.ranks)
    # closing: an error or Ctrl-C here stops the ranks still running (pool, or the cluster's tasks).
    # In this process, the run's processes are spare: a big trace file is split across them.
    spare = options.advisor_analyze_processes if dask is None else 1
    with contextlib.closing(finished), spare_processes(spare):
        for done, outcome in enumerate(finished, start=1):
            outcomes.append(outcome)
            if done < n:
                progress(f"reading rank {done + 1}/{n}", done, total)
    return sorted(outcomes, key=lambda o: o.rank)


def _analyse_ranks_in_pool(profile: ProfileSet, args: tuple[Any, ...], workers: int) -> Iterator[RankOutcome]:
    """`analyse_rank(profile, rank, *args)` for every rank in `workers` local processes, each outcome
    as its rank finishes."""
    # Where the workers cannot be forks of this process, the fork server imports the readers and the
    # checks once, so that each worker starts without paying for them again.
    with worker_pool(workers, preload=[*reader_modules(), "advisor.engine"]) as pool:
        futures = [pool.submit(analyse_rank, profile, rank, *args) for rank in profile.ranks]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:  # closed early (an error, Ctrl-C, a notebook's Interrupt)
            # The ranks not started never run: leaving the pool then waits only for those running.
            for future in futures:
                future.cancel()
            raise


def table_warnings(tables: dict[int, dict[str, pd.DataFrame]]) -> list[str]:
    """What the readers could not read (e.g. a truncated trace), once each, for the report."""
    found = (
        w for rank in tables.values() for frame in rank.values() for w in frame.attrs.get("warnings", ())
    )
    return list(dict.fromkeys(found))


def select_step(tables: dict[str, pd.DataFrame], step: int) -> dict[str, pd.DataFrame]:
    """Only `step`'s rows of the tables that are per step; whole-profile tables stay as they are."""
    return {
        name: frame[frame["step"] == step].reset_index(drop=True) if "step" in frame.columns else frame
        for name, frame in tables.items()
    }


def _normalise(result: Any, check_id: str) -> CheckResult:
    if isinstance(result, CheckResult):
        out = result
    elif isinstance(result, list):
        out = CheckResult(findings=result)
    else:
        raise TypeError(f"check {check_id} returned {type(result).__name__}, not a list of findings")
    for finding in out.findings:
        if not isinstance(finding, Finding):
            raise TypeError(f"check {check_id} returned a {type(finding).__name__} among its findings")
    return out


def _run_one(spec: CheckSpec, ctx: Any, messages: Messages, prefix: str = "") -> CheckResult | NotEvaluated:
    try:
        return _normalise(spec.fn(ctx), spec.id)
    except CheckNotEvaluated as exc:
        return NotEvaluated(spec.id, _one_line(prefix + exc.reason))
    except Exception as exc:  # a failing check lands in not_evaluated, it never sinks the run
        reason = messages.t("engine.check_failed", error=f"{type(exc).__name__}: {exc}")
        return NotEvaluated(spec.id, _one_line(prefix + reason))


class Outcomes:
    """Collects check outcomes into findings, not-evaluated entries and the report summary."""

    def __init__(self, messages: Messages) -> None:
        self.messages = messages
        self.findings: list[Finding] = []
        self.not_evaluated: list[NotEvaluated] = []
        self.summary: dict[str, Any] = {"per_rank": []}

    def add(self, outcome: CheckResult | NotEvaluated) -> None:
        if isinstance(outcome, NotEvaluated):
            self.not_evaluated.append(outcome)
            return
        self.findings.extend(outcome.findings)
        for key, value in outcome.summary.items():
            if isinstance(value, list) and isinstance(self.summary.get(key), list):
                self.summary[key].extend(value)
            else:
                self.summary[key] = value

    def add_rank_results(self, check_id: str, by_rank: dict[int, CheckResult | NotEvaluated]) -> None:
        """One rank check's outcomes on every rank: findings merged across ranks, reasons grouped."""
        m = self.messages
        found = {r: o for r, o in by_rank.items() if isinstance(o, CheckResult)}
        reasons: dict[str, list[int]] = {}
        for rank, outcome in by_rank.items():
            if isinstance(outcome, NotEvaluated):
                reasons.setdefault(outcome.reason, []).append(rank)
        several = len(by_rank) > 1
        for reason, ranks in reasons.items():
            if not several:
                text = reason
            elif len(ranks) == 1:
                text = m.t("engine.missing_table", rank=ranks[0], reason=reason)
            else:
                text = m.t("engine.missing_table_ranks", ranks=_rank_list(ranks), reason=reason)
            self.not_evaluated.append(NotEvaluated(check_id, text))
        for outcome in found.values():
            self.add(CheckResult(findings=[], summary=outcome.summary))
        self.findings.extend(merge_rank_findings(m, {r: o.findings for r, o in found.items()}))


def _rank_list(ranks: Iterable[int]) -> str:
    return ", ".join(str(r) for r in sorted(ranks))


def merge_rank_findings(m: Messages, by_rank: dict[int, list[Finding]]) -> list[Finding]:
    """One rank check's findings over the ranks: the costliest rank's findings stand for all, naming
    every rank where the check found something, with a per-rank table of what it found there."""
    hit = {rank: findings for rank, findings in by_rank.items() if findings}
    if len(hit) <= 1:
        return [f for findings in hit.values() for f in findings]

    def cost(rank: int) -> tuple[float, int]:
        return (sum(f.estimated_gain_us or 0.0 for f in hit[rank]), -rank)

    worst = max(hit, key=cost)
    ranks = sorted(hit)
    per_rank = Evidence(
        m.t("engine.evidence.per_rank"),
        ["rank", "findings", "priority", "estimated_gain_us", "title"],
        [
            [
                rank,
                len(hit[rank]),
                min((f.priority for f in hit[rank]), key=PRIORITIES.index),
                round(sum(f.estimated_gain_us or 0.0 for f in hit[rank]), 3),
                hit[rank][0].title,
            ]
            for rank in ranks
        ],
    )
    note = m.t("engine.seen_on_ranks", count=len(ranks), ranks=_rank_list(ranks), rank=worst)
    return [replace(_with_note(f, note), ranks=ranks, evidence=[*f.evidence, per_rank]) for f in hit[worst]]


def _with_note(finding: Finding, note: str) -> Finding:
    """`finding` with `note` as the last paragraph of its description."""
    return replace(finding, description=f"{finding.description}\n{note}" if finding.description else note)


def run_checks(
    specs: Iterable[CheckSpec],
    profile: ProfileSet,
    outcomes: list[RankOutcome],
    options: AnalysisOptions,
    messages: Messages,
    load: TableLoader = load_rank_tables,
) -> Outcomes:
    """Collect the rank checks' results and run the cluster checks on the tables the ranks sent (and
    those they read on demand, with `load`)."""
    collected = Outcomes(messages)
    tables = {o.rank: o.tables for o in outcomes}
    errors = {o.rank: o.errors for o in outcomes}
    rank_results: dict[str, dict[int, CheckResult | NotEvaluated]] = {}
    for outcome in outcomes:
        for check_id, result in outcome.results:
            rank_results.setdefault(check_id, {})[outcome.rank] = result
    for spec in specs:
        if spec.scope == "rank":
            collected.add_rank_results(spec.id, rank_results.get(spec.id, {}))
        elif spec.scope == "cluster":
            usable: dict[int, dict[str, pd.DataFrame]] = {}
            for rank in profile.ranks:
                absent = sorted(n for n in spec.needs if n not in tables.get(rank.rank, {}))
                if absent:
                    reason = errors.get(rank.rank, {}).get(absent[0], f"table {absent[0]} unavailable")
                    left_out = messages.t("engine.rank_left_out", rank=rank.rank, reason=reason)
                    collected.add(NotEvaluated(spec.id, left_out))
                else:
                    sent = {n: tables[rank.rank][n] for n in spec.tables if n in tables[rank.rank]}
                    usable[rank.rank] = (
                        OnDemandTables(sent, rank, spec.on_demand, load) if spec.on_demand else sent
                    )
            if usable:
                collected.add(_run_one(spec, ClusterContext(profile, usable, options, messages), messages))
    return collected


def comparison_pair(
    profile: ProfileSet,
    step_traces: dict[int, pd.DataFrame],
    baseline: ProfileSet | None,
    baseline_step_traces: dict[int, pd.DataFrame] | None = None,
) -> tuple[str, RankInfo, RankInfo] | None:
    """(mode, target rank, baseline rank): with a baseline, the target's slowest rank against the
    baseline rank with the same id (the baseline's slowest when ids differ); without, the slowest
    rank against the fastest of its pipeline stage (ranks of different stages run different layers),
    when it is materially slower: by cluster.slow_rank's material gap (a share of the step), else two
    ranks that differ by jitter would be compared as if one had a problem. None when there is nothing
    to compare.

    "Slowest" is by the time a rank spends on its own (computing + free): in a synchronous job every
    rank has about the same step time, and the ranks that wait for a slow one show it as
    communication, not as their own work."""
    by_id = {r.rank: r for r in profile.ranks}
    own = {rank: own_time_us(frame) for rank, frame in step_traces.items()}
    timed = sorted((t, rank) for rank, t in own.items() if t is not None and rank in by_id)
    slowest = by_id[timed[-1][1]] if timed else profile.ranks[0]
    if baseline is not None:
        base_ids = {r.rank: r for r in baseline.ranks}
        if slowest.rank in base_ids:
            return "baseline", slowest, base_ids[slowest.rank]
        base_own = {rank: own_time_us(f) for rank, f in (baseline_step_traces or {}).items()}
        base_timed = sorted((t, rank) for rank, t in base_own.items() if t is not None and rank in base_ids)
        return "baseline", slowest, base_ids[base_timed[-1][1]] if base_timed else baseline.ranks[0]
    stage = {rank: i for i, members in enumerate(profile.stages) for rank in members}
    peers = [(t, rank) for t, rank in timed if stage.get(rank) == stage.get(slowest.rank)]
    step_us = mean_step_us(step_traces.get(slowest.rank))
    if len(peers) < 2 or not step_us:
        return None
    if peers[-1][0] - peers[0][0] < thresholds("slow_rank")["min_gap_share"] * step_us:
        return None
    return "ranks", slowest, by_id[peers[0][1]]


def comparison_data_losses(
    m: Messages, names: Iterable[str], sides: Sequence[tuple[str, dict[str, pd.DataFrame], dict[str, str]]]
) -> tuple[list[str], list[str]]:
    """(notes, blockers): what the tables `names` of each compared side (label, tables, read errors)
    lost to damaged input. A blocker (a file cut short, more than MAX_LOST_SHARE of a table's rows
    dropped) means the comparison cannot be trusted; a note only qualifies its findings."""
    notes: list[str] = []
    blockers: list[str] = []
    for side, tables, errors in sides:
        for name in sorted(names):
            if name not in tables:
                if name in errors:  # an optional table: the check runs without it
                    notes.append(m.t("engine.comparison.unread", side=side, table=name, detail=errors[name]))
                continue
            frame, share = tables[name], lost_share(tables[name])
            about = {"side": side, "table": name, "detail": "; ".join(frame.attrs.get("warnings", ()))}
            if frame.attrs.get(INCOMPLETE):
                blockers.append(m.t("engine.comparison.cut_short", **about))
            elif share > 0:
                text = m.t("engine.comparison.rows_dropped", share=share, **about)
                # A dropped step row leaves the other steps' per-step figures valid: only a note.
                blocks = share > MAX_LOST_SHARE and name != "step_trace"
                (blockers if blocks else notes).append(text)
    return notes, blockers


def run_comparison_checks(
    specs: Sequence[CheckSpec],
    profile: ProfileSet,
    step_traces: dict[int, pd.DataFrame],
    baseline: ProfileSet | None,
    options: AnalysisOptions,
    messages: Messages,
    collected: Outcomes,
    step: int | None,
    load: TableLoader = load_rank_tables,
) -> None:
    """Load the two compared ranks' tables (the profile's with `load`: on a small profile, those its
    ranks sent) and run the comparison checks."""
    if not specs or options.disable_profiling_comparison:
        return
    base_traces: dict[int, pd.DataFrame] = {}
    if baseline is not None and len(baseline.ranks) > 1:
        for rank in baseline.ranks:
            loaded, _ = load_rank_tables(rank, ["step_trace"])
            if "step_trace" in loaded:
                base_traces[rank.rank] = loaded["step_trace"]
    pair = comparison_pair(profile, step_traces, baseline, base_traces)
    if pair is None:
        # Ranks that do not differ materially are an answer (nothing to compare); no step data is not.
        timed = any(own_time_us(frame) is not None for frame in step_traces.values())
        if baseline is not None or (len(profile.ranks) > 1 and not timed):
            for spec in specs:
                collected.add(NotEvaluated(spec.id, messages.t("engine.no_comparison_pair")))
        return
    mode, target_rank, base_rank = pair
    names = sorted({n for spec in specs for n in spec.tables})
    target_tables, target_errors = load(target_rank, names)
    base_tables, base_errors = (load if mode == "ranks" else load_rank_tables)(base_rank, names)
    if step is not None:
        target_tables = select_step(target_tables, step)
        if mode == "ranks":  # the same run: compare the same step
            base_tables = select_step(base_tables, step)
    base_profile = baseline if baseline is not None else profile
    sides = [
        (messages.t(f"comparison.label.{mode}.target", rank=target_rank.rank), target_tables, target_errors),
        (messages.t(f"comparison.label.{mode}.baseline", rank=base_rank.rank), base_tables, base_errors),
    ]
    for spec in specs:
        absent = [(n, target_errors) for n in spec.needs if n not in target_tables]
        absent += [(n, base_errors) for n in spec.needs if n not in base_tables]
        if absent:
            name, errs = absent[0]
            collected.add(NotEvaluated(spec.id, _one_line(errs.get(name, f"table {name} unavailable"))))
            continue
        notes, blockers = comparison_data_losses(messages, spec.tables, sides)
        if blockers:
            reason = messages.t(
                "engine.comparison.not_evaluated", reasons="; ".join(blockers), limit=MAX_LOST_SHARE
            )
            collected.add(NotEvaluated(spec.id, _one_line(reason)))
            continue
        ctx = ComparisonContext(
            mode=mode,
            target=profile,
            target_rank=target_rank,
            target_tables=_tables_for(spec, target_tables),
            baseline=base_profile,
            baseline_rank=base_rank,
            baseline_tables=_tables_for(spec, base_tables),
            options=options,
            messages=messages.for_device(profile.device),  # worded for the target run's device
        )
        outcome = _run_one(spec, ctx, messages)
        if notes and isinstance(outcome, CheckResult):
            note = messages.t("engine.comparison.note", notes="; ".join(notes))
            outcome.findings = [_with_note(f, note) for f in outcome.findings]
        collected.add(outcome)


def cap_gains(findings: list[Finding], step_traces: dict[int, pd.DataFrame]) -> list[Finding]:
    """No finding promises more than the step time it is judged against (the longest step of its
    ranks, or of its step), nor a gain that is not a number: either is a bug in the check, logged
    here and capped."""
    times = {rank: step_times_us(frame) for rank, frame in step_traces.items()}
    out = []
    for finding in findings:
        gain, limit = finding.estimated_gain_us, _step_limit(finding, times)
        if gain is not None and not math.isfinite(gain):
            _log.warning("%s: estimated gain %s µs is not a number; left out", finding.check, gain)
            finding = replace(finding, estimated_gain_us=None)
        elif gain is not None and limit is not None and gain > limit:
            _log.warning(
                "%s: estimated gain %.3f µs is above the %.3f µs step it is judged against; capped",
                finding.check,
                gain,
                limit,
            )
            finding = replace(finding, estimated_gain_us=round(limit, 3))
        out.append(finding)
    return out


def _step_limit(finding: Finding, times: dict[int, pd.Series]) -> float | None:
    """The longest step time (µs) of the finding's ranks (every rank when it names none); None when
    no rank has a step longer than 0 to judge by."""
    limits = []
    for rank in finding.ranks or list(times):
        steps = times.get(rank)
        if steps is None or steps.empty:
            continue
        if finding.step is not None and (steps.index == finding.step).any():
            steps = steps[steps.index == finding.step]
        limits.append(float(steps.max()))
    longest = max(limits, default=0.0)
    return longest if longest > 0 else None


@dataclass(frozen=True)
class TrainingLogInput:
    """A training log to read (beside a profile or alone) and the job's facts the user gave for it."""

    path: str | Path
    devices: int | None = None
    seq_length: int | None = None


def analyse_training_log(
    given: TrainingLogInput,
    options: AnalysisOptions,
    messages: Messages,
    *,
    profile_step_s: float | None = None,
    profile_step: int | None = None,
) -> tuple[dict[str, Any], Outcomes, list[str]]:
    """The report's `training` object, the training checks' outcomes (when the training dimension is
    selected) and the warnings of reading the log. InputError when the file is not a training log."""
    from .checks.training_base import TrainingContext, training_run
    from .formats.training_log import read_training_log
    from .training import training_summary

    run = training_run(read_training_log(given.path), devices=given.devices, seq_length=given.seq_length)
    collected = Outcomes(messages)
    context = TrainingContext(run, options, messages, profile_step_s, profile_step)
    for spec in selected_checks(options.analysis_dimensions):
        if spec.scope == "training":
            collected.add(_run_one(spec, context, messages))
    warnings = [
        messages.t("engine.training_log_note", note=messages.t(key, **values))
        for key, values in (*run.log.notes, *run.warnings)
    ]
    return training_summary(run, messages), collected, warnings


def run_log_analysis(
    given: TrainingLogInput,
    *,
    options: AnalysisOptions | None = None,
    language: str = "en",
    progress: ProgressFn | None = None,
) -> Report:
    """Analyse a training log alone: a report with its Training section and the training findings;
    the profile's sections say there is no profile."""
    options = options or AnalysisOptions()
    messages = Messages(language)
    notify = progress or _no_progress
    started = time.perf_counter()
    notify("reading the training log", 0, 2)
    training, collected, warnings = analyse_training_log(given, options, messages)
    checked = time.perf_counter()
    return Report(
        input=InputInfo(
            path=str(given.path),
            compare_path=None,
            kind=TRAINING_LOG_KIND,
            export="",
            ranks=[],
            steps=[],
            cann_version=None,
            torch_version=None,
            format=training["format"],
        ),
        tool_version=__version__,
        findings=collected.findings,
        not_evaluated=collected.not_evaluated,
        timings_s={"load": 0.0, "checks": checked - started, "render": 0.0},
        language=language,
        warnings=warnings,
        dimensions=tuple(options.analysis_dimensions),
        checked_dimensions=("training",) if "training" in options.analysis_dimensions else (),
        training=training,
    )


def run_analysis(
    path: str | Path,
    *,
    compare_path: str | Path | None = None,
    options: AnalysisOptions | None = None,
    language: str = "en",
    progress: ProgressFn | None = None,
    step: int | None = None,
    deployment: Deployment | None = None,
    training_log: TrainingLogInput | None = None,
) -> Report:
    """Analyse the profile at `path` (only `step` when given), its ranks on the deployment's Dask
    scheduler when it names one (there `path` may be in obs:// or s3://, read by the workers), and the
    training log beside it when given. InputError for unusable input; a failing check never raises."""
    run = functools.partial(
        _analyse,
        path,
        compare_path=compare_path,
        options=options or AnalysisOptions(),
        language=language,
        notify=progress or _no_progress,
        step=step,
        training_log=training_log,
    )
    if deployment is None or not deployment.dask_scheduler_address:
        return run(dask=None)
    from .dask_engine import DaskRun

    # One client for the whole analysis: connecting checks every worker's version.
    with contextlib.closing(DaskRun(deployment)) as dask:
        return run(dask=dask)


def _analyse(
    path: str | Path,
    *,
    compare_path: str | Path | None,
    options: AnalysisOptions,
    language: str,
    notify: ProgressFn,
    step: int | None,
    training_log: TrainingLogInput | None,
    dask: DaskRun | None,
) -> Report:
    """`run_analysis`, its ranks on the scheduler of `dask` when given."""
    messages = Messages(language)
    started = time.perf_counter()

    stored = None
    selected = selected_checks(options.analysis_dimensions)
    if dask is not None and is_object_url(str(path)):
        from .dask_engine import discover_stored

        tables = tuple(sorted(needed_tables(options.analysis_dimensions)))
        profile, stored = discover_stored(dask, str(path), tables)
    else:
        profile = discover(path)
    if stored is not None and compare_path is not None:
        raise InputError("--compare is not available for a profile in object storage read on Dask")
    compare = discover(compare_path) if compare_path is not None else None
    specs = [spec for spec in selected if spec.applies_to(profile.device)]
    not_applicable = [
        NotApplicable(spec.id, messages.t(f"engine.not_applicable.{profile.device}"))
        for spec in selected
        if not spec.applies_to(profile.device)
    ]
    by_scope = {scope: [spec for spec in specs if spec.scope == scope] for scope in SCOPES}
    # step_trace always travels: it is small, and picks the ranks a comparison looks at.
    cluster_names = sorted({"step_trace", *(n for spec in by_scope["cluster"] for n in spec.tables)})
    # A small profile's ranks also send what this process would read of them again: the tables the
    # cluster checks read on demand and the comparison's. (One in object storage has no local sizes.)
    sent_names = cluster_names
    ranks_mb = data_mb(profile.ranks) if stored is None else 0.0
    if stored is None and ranks_mb <= SEND_EVERY_TABLE_MAX_MB:
        on_demand = {n for spec in by_scope["cluster"] for n in spec.on_demand}
        compared = () if options.disable_profiling_comparison else by_scope["comparison"]
        sent_names = sorted({*cluster_names, *on_demand, *(n for spec in compared for n in spec.tables)})
    total = len(profile.ranks) + 2
    notify(f"reading rank 1/{len(profile.ranks)}", 0, total)
    if step is not None and step not in profile.steps:
        raise InputError(f"{profile.root}: step {step} was not profiled ({describe_steps(profile.steps)})")
    outcomes = analyse_ranks(
        profile,
        sent_names,
        [spec.id for spec in by_scope["rank"]],
        options,
        language=language,
        step=step,
        progress=notify,
        total=total,
        dask=dask,
        stored=stored,
        ranks_mb=ranks_mb,
    )
    if not any(_read_anything(o, cluster_names) for o in outcomes):
        # Nothing at all could be read: that is unusable input, not a report with every check missing.
        # step_trace first: every check needs it, so its reason is the one that explains the rest.
        reasons = (
            msg
            for o in outcomes
            for _, msg in sorted(o.errors.items(), key=lambda item: item[0] != "step_trace")
        )
        first = next(reasons, f"{profile.root}: no table could be read")
        others = sum(len(o.errors) for o in outcomes) - 1
        raise InputError(first + (f" (and {others} more like it)" if others > 0 else ""))
    loaded = time.perf_counter()

    notify("running checks", len(profile.ranks), total)
    step_traces = {o.rank: o.tables["step_trace"] for o in outcomes if "step_trace" in o.tables}
    load: TableLoader = load_rank_tables
    if dask is not None and stored is not None:  # this process cannot read the ranks: their workers do
        from .dask_engine import StoredTables

        load = StoredTables(dask, stored, load_rank_tables).load
    load = sent_first(outcomes, load)
    collected = run_checks(specs, profile, outcomes, options, messages, load)
    run_comparison_checks(
        by_scope["comparison"], profile, step_traces, compare, options, messages, collected, step, load
    )
    findings = link_causes(cap_gains(collected.findings, step_traces), messages, baseline=compare is not None)
    not_evaluated, summary = collected.not_evaluated, collected.summary
    dimensions = applicable_dimensions(
        options.analysis_dimensions,
        ranks=len(profile.ranks),
        has_baseline=compare is not None,
        comparison_disabled=options.disable_profiling_comparison,
    )
    not_evaluated.extend(
        NotEvaluated(c, messages.t("engine.not_implemented"))
        for c in unimplemented(dimensions, (spec.id for spec in all_checks()))
    )
    training, training_warnings = None, []
    if training_log is not None:
        step_times = [row["step_us"] for row in summary.get("per_rank", []) if row.get("step_us")]
        profiled = [step] if step is not None else list(profile.steps)
        training, training_outcomes, training_warnings = analyse_training_log(
            training_log,
            options,
            messages,
            profile_step_s=sum(step_times) / len(step_times) / 1e6 if step_times else None,
            profile_step=profiled[0] if profiled else None,
        )
        findings += training_outcomes.findings
        not_evaluated += training_outcomes.not_evaluated
    checked = time.perf_counter()
    hints, ignored = version_hints(options, profile.device)

    return Report(
        input=InputInfo(
            path=str(path) if stored else str(profile.root),
            compare_path=str(compare.root) if compare is not None else None,
            ranks=[r.rank for r in profile.ranks],
            steps=[step] if step is not None else list(profile.steps),
            **report_input_fields(profile),
        ),
        tool_version=__version__,
        summary=summary,
        findings=findings,
        not_evaluated=not_evaluated,
        not_applicable=not_applicable,
        timings_s={"load": loaded - started, "checks": checked - loaded, "render": 0.0},
        language=language,
        warnings=list(profile.warnings)
        + (list(compare.warnings) if compare else [])
        + list(dict.fromkeys(w for o in outcomes for w in o.warnings))
        + [messages.t("engine.version_hint_ignored", option=flag, value=value) for flag, value in ignored]
        + training_warnings,
        dimensions=tuple(options.analysis_dimensions),
        checked_dimensions=tuple(
            dict.fromkeys(
                spec.dimension for spec in specs if spec.scope != "training" or training_log is not None
            )
        ),
        version_hints=hints,
        training=training,
        rank_tables={o.rank: dict(o.tables) for o in outcomes},
    )


def _check_output_dir(output_dir: Path) -> Path:
    out = output_dir.expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a directory")
    inside = data_folder_at(out.resolve())
    if inside is not None:
        raise InputError(
            f"{out}: output folder is inside profiling data ({inside}); input folders are read-only"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(cannot("create the output folder", out, exc)) from None
    return out


# A report's file name: the analysed folder's name (and the baseline's), then the time. Only word
# characters, dots and dashes: a folder name may hold anything a file system allows (spaces,
# quotes, '<', a leading '-' or dot) and the name travels through shells, URLs and object stores.
# Each name at most 80 bytes of UTF-8: both names, the time and the extension stay well under the
# 255 bytes most file systems allow in a name, whatever the script of the folder names.
_UNSAFE_NAME = re.compile(r"[^\w.-]+")
# A trace file's or a training log's suffix: trainer_log.jsonl, train.log, trainer_state.json.
_TRACE_SUFFIX = re.compile(r"(\.pt\.trace)?\.(json|jsonl|log|txt)(\.gz)?$", re.IGNORECASE)
MAX_NAME_BYTES = 80
MAX_NAME_TRIES = 10_000  # report_N names tried before giving up on a crowded folder


def profile_name(path: str) -> str:
    """The analysed folder's own name, or a trace file's or training log's without its
    `.pt.trace.json[.gz]`, `.json[.gz]`, `.jsonl` or `.log`, safe as part of a file name ('profile'
    if nothing is left). Inside a rank folder's ASCEND_PROFILER_OUTPUT the rank folder names the
    data."""
    folder = data_name(PurePosixPath(path.replace("\\", "/").rstrip("/")))
    stem = _TRACE_SUFFIX.sub("", folder.name)
    name = re.sub(r"\.{2,}", ".", _UNSAFE_NAME.sub("_", stem)).strip("._-")
    name = name.encode()[:MAX_NAME_BYTES].decode(errors="ignore").rstrip("._-")
    return name or "profile"


def report_stem(report: Report) -> str:
    """`<profile>_<YYYYmmdd-HHMMSS>`, or `<profile>_vs_<baseline>_<YYYYmmdd-HHMMSS>` with a baseline."""
    name = profile_name(report.input.path)
    if report.input.compare_path:
        name += f"_vs_{profile_name(report.input.compare_path)}"
    return f"{name}_{report.generated.strftime('%Y%m%d-%H%M%S')}"


def _report_writer(fmt: str) -> Callable[[Report, Path], None]:
    """The writer of one report format, imported only when that format is written: the HTML writer
    loads jinja2 (and plotly for the charts) and the XLSX writer openpyxl, ~0.3 s that a JSON-only
    run does not need."""
    if fmt == "html":
        from .report.html import write_html

        return write_html
    if fmt == "xlsx":
        from .report.xlsx import write_xlsx

        return write_xlsx
    if fmt == NOTEBOOK_FORMAT:
        return write_report_notebook
    from .report.jsonout import write_json

    return write_json


def write_report_notebook(report: Report, path: Path) -> Path:
    """The notebook of `report` (`advisor.report.notebook`): it re-analyses the report's data (and the
    training log beside it), named as absolute paths (a notebook's kernel runs in the notebook's
    folder, not the CLI's)."""
    from .report.notebook import build_notebook, write_notebook

    def located(path: str | None) -> str | None:
        return path if path is None or is_object_url(path) else os.path.abspath(path)

    beside = report.training["path"] if report.training is not None and report.has_profile else None
    notebook = build_notebook(
        report.to_json(),
        data_path=located(report.input.path) or "",
        compare_path=located(report.input.compare_path),
        language=report.language,
        dimensions=report.dimensions if set(report.dimensions) != set(DIMENSIONS) else None,
        training_log=located(beside),
    )
    return write_notebook(notebook, path)


def write_reports(
    report: Report,
    output_dir: str | Path,
    formats: Iterable[str] = REPORT_FORMATS,
    *,
    progress: ProgressFn | None = None,
) -> dict[str, Path]:
    """Write `report_stem(report)[_N].{html,xlsx,json}` (and `.ipynb` when asked) into `output_dir`
    (created if missing): all of them or none (`advisor.outputs`), never overwriting a file.
    OutputError (one line) when the folder cannot be written."""
    # JSON last, so that it carries the render time of the others.
    chosen = sorted(set(formats) & set(OUTPUT_FORMATS), key=lambda f: (f == "json", OUTPUT_FORMATS.index(f)))
    unknown = sorted(set(formats) - set(OUTPUT_FORMATS))
    if unknown or not chosen:
        raise InputError(
            f"report formats must be among {', '.join(OUTPUT_FORMATS)}; got {', '.join(formats)}"
        )
    out = _check_output_dir(Path(output_dir))
    total = len(report.input.ranks) + 2
    (progress or _no_progress)("writing report", total - 1, total)
    started = time.perf_counter()
    base = report_stem(report)
    staged: dict[str, Path] = {}
    target = out  # what the user is told could not be written
    try:
        for fmt in chosen:
            if fmt == "json":
                report.timings_s["render"] = time.perf_counter() - started
            target = out / f"{base}.{fmt}"
            staged[fmt] = outputs.stage(target)
            _report_writer(fmt)(report, staged[fmt])
        target = out
        paths = outputs.publish(staged, (base if n == 0 else f"{base}_{n}" for n in range(MAX_NAME_TRIES)))
    except OSError as exc:
        raise OutputError(cannot("write", target, exc)) from None
    finally:
        outputs.discard(staged.values())
    report.timings_s["render"] = time.perf_counter() - started
    (progress or _no_progress)("done", total, total)
    return paths
