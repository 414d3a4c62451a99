"""schedule.affinity_api: framework op sequences and optimizers with NPU-affine replacements.

The rules (knowledge/affinity_api.json) map sequences of top-level aten ops, per thread in time
order, and optimizer classes to the fused NPU API that replaces them. A rule applies when the CANN
version of the data (or the one the user named) ships the API. The replaced sequence launches
several small kernels where the fused API launches one; what that costs shows as device idle time
during the sequence's dispatch, which is the gain estimate.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check
from .schedule_base import (
    free_slices,
    intervals,
    is_aten,
    mean_step_time,
    names_where,
    step_windows,
    top_level,
    union_overlap_ns,
    us,
    user_frames,
)

OPTIMIZER_PREFIX = "Optimizer.step#"
_STEP_SUFFIX = re.compile(r"\.step$")
_TOKEN = re.compile(r"^\(([^()]+)\)(\{\d+,\d+\}|[?*+])?$")


@functools.cache
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """'(permute|transpose)-(contiguous){0,1}-view' -> a regex over '-op--op-…' strings."""
    parts = []
    for token in pattern.split("-"):
        match = _TOKEN.match(token)
        if match:
            names = "|".join(f"-{re.escape(n)}-" for n in match.group(1).split("|"))
            parts.append(f"(?:{names}){match.group(2) or ''}")
        else:
            parts.append(f"-{re.escape(token)}-")
    return re.compile("".join(parts))


def version_key(version: str | None) -> tuple[int, ...] | None:
    """'8.0.RC2' -> (8, 0, 0, 2); '8.0.0' -> (8, 0, 1, 0): a release sorts after its RCs."""
    if not version:
        return None
    parts = re.findall(r"\d+|RC\d+|alpha\d*|beta\d*|T\d+", str(version), flags=re.IGNORECASE)
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    key = [int(parts[0]), int(parts[1])]
    third = parts[2] if len(parts) > 2 else "0"
    if third.isdigit():
        key += [1, int(third)]
    else:
        digits = re.sub(r"\D", "", third)
        key += [0, int(digits) if digits else 0]
    return tuple(key)


def _applies(rule: dict[str, Any], version: tuple[int, ...] | None) -> bool:
    minimum = version_key(rule.get("min_cann"))
    return version is None or minimum is None or version >= minimum


def _aten_matches(aten: pd.DataFrame, version: tuple[int, ...] | None) -> pd.DataFrame:
    """One row per matched sequence of the framework ops `aten` (aten::…): api, ops (matched names),
    first (row of its first op), start, end."""
    top = top_level(aten)
    names = aten["name"].to_numpy(dtype=object)
    rules = [rule for rule in knowledge("affinity_api")["aten"] if _applies(rule, version)]
    found = []
    tids = top["tid"].to_numpy()
    for tid in pd.unique(tids):
        on_thread = tids == tid
        pos = top["pos"].to_numpy()[on_thread]
        units = [f"-{name.removeprefix('aten::')}-" for name in names[pos]]
        offsets = np.r_[0, np.cumsum([len(u) for u in units])]
        text = "".join(units)
        starts, ends = top["start"].to_numpy()[on_thread], top["end"].to_numpy()[on_thread]
        for rule in rules:
            for pattern in rule["patterns"]:
                for hit in pattern_regex(pattern).finditer(text):
                    if hit.end() == hit.start():
                        continue
                    first = int(np.searchsorted(offsets, hit.start(), side="right") - 1)
                    last = int(np.searchsorted(offsets, hit.end(), side="left") - 1)
                    found.append(
                        (rule["api"], hit.group(0).strip("-").replace("--", "-"), pos[first], starts[first],
                         ends[first:last + 1].max())
                    )  # fmt: skip
    frame = pd.DataFrame(found, columns=["api", "ops", "first", "start", "end"])
    if frame.empty:
        return frame
    # Patterns of one rule may overlap (A-B and A-B-C): a sequence counts once per API.
    frame = frame.sort_values(["api", "start", "end"], ascending=[True, True, False], kind="stable")
    frame = frame.drop_duplicates(["api", "start"])
    frame["call_stack"] = aten["call_stack"].to_numpy(dtype=object)[frame["first"].to_numpy(dtype=np.int64)]
    return frame


def _optimizer_matches(steps_: pd.DataFrame, version: tuple[int, ...] | None) -> pd.DataFrame:
    """One row per optimizer step (`steps_`: the Optimizer.step#… ops) with a fused replacement."""
    if steps_.empty:
        return pd.DataFrame()
    rules = knowledge("affinity_api")["optimizer"]
    api_of = {c: r["api"] for r in rules if _applies(r, version) for c in r["classes"]}
    # Optimizer.step#Adam.step -> Adam -> its fused API (None: none).
    api = np.array(
        [
            api_of.get(_STEP_SUFFIX.sub("", name[len(OPTIMIZER_PREFIX) :]))
            for name in steps_["name"].to_numpy(dtype=object)
        ],
        dtype=object,
    )
    found = np.not_equal(api, None)
    hit = steps_[found]
    starts, ends = intervals(hit)
    return pd.DataFrame(
        {
            "api": api[found],
            "ops": hit["name"].to_numpy(dtype=object),
            "start": starts,
            "end": ends,
            "call_stack": hit["call_stack"].to_numpy(dtype=object),
        }
    )


@check(
    "schedule.affinity_api",
    "schedule",
    needs=frozenset({"host_ops", "overlap", "steps", "step_trace"}),
    devices=NPU_ONLY,
)
def affinity_api(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    if ctx.options.disable_affinity_api:
        raise NotEvaluated(m.t("schedule.affinity_api.disabled"))
    steps = step_windows(ctx.tables["steps"])
    host = ctx.tables["host_ops"]
    in_steps = steps.contains(host["start_ns"])
    aten = host[in_steps & names_where(host, is_aten)].reset_index(drop=True)
    optimizer_steps = host[in_steps & names_where(host, _is_optimizer_step)]
    data_version = ctx.profile.versions.get("cann")
    version_text = data_version or ctx.options.cann_version
    version = version_key(version_text)
    matches = pd.concat(
        [
            frame
            for frame in (_aten_matches(aten, version), _optimizer_matches(optimizer_steps, version))
            if len(frame)
        ]
        or [pd.DataFrame(columns=["api", "ops", "start", "end", "call_stack"])],
        ignore_index=True,
    )
    if matches.empty:
        return []
    n_steps = steps.count
    free = free_slices(ctx.tables["overlap"], steps)
    m_starts = matches["start"].to_numpy(dtype=np.int64)
    m_ends = matches["end"].to_numpy(dtype=np.int64)
    # The device idle under the replaceable ops is what a fused API could remove at most.
    gain = Gain.upper_bound(us(union_overlap_ns(m_starts, m_ends, *free) / n_steps), mean_step_time(ctx))
    matches["call_site"] = user_frames(pd.Series(matches["call_stack"], dtype=object))
    matches["call_site"] = matches["call_site"].replace("", m.t("schedule.affinity_api.no_stack"))
    matches["host_us"] = (m_ends - m_starts) / 1000.0
    sites = matches.groupby(["api", "ops", "call_site"], sort=False)
    grouped = (
        pd.concat([sites.size().rename("count"), sites["host_us"].sum()], axis=1)
        .reset_index()
        .sort_values(["count", "host_us"], ascending=False, kind="stable")
    )
    rows = [
        [r.api, r.ops, r.call_site, int(r.count), round(r.count / n_steps, 2), round(r.host_us / n_steps, 3)]
        for r in grouped.itertuples(index=False)
    ]
    apis = list(dict.fromkeys(grouped["api"]))
    no_stack = not matches["call_stack"].notna().any()
    # Per API, the op sequences it replaces, in the table's order.
    replaced: dict[str, dict[str, None]] = {}
    for api, ops in zip(grouped["api"].tolist(), grouped["ops"].tolist(), strict=True):
        replaced.setdefault(api, {})[str(ops)] = None
    suggestions = [
        m.t("schedule.affinity_api.suggestion.api", api=api, ops=", ".join(replaced[api])) for api in apis
    ]
    suggestions += m.t_list("schedule.affinity_api.suggestions")
    if no_stack:
        suggestions += m.t_list("schedule.affinity_api.suggestions.stack")
    return [
        finding(
            title=m.t("schedule.affinity_api.title", apis=len(apis), count=len(matches)),
            lines=[
                m.t(
                    "schedule.affinity_api.description",
                    count=len(matches),
                    steps=n_steps,
                    apis=", ".join(apis),
                    cann=version_text or m.t("common.cann_unknown"),
                    idle_ms=gain.ms,
                    share=gain.share,
                ),
                m.t("schedule.affinity_api.gain"),
            ],
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.affinity_api.evidence"),
                    [
                        "affinity_api",
                        "replaced_ops",
                        "call_site",
                        "count",
                        "count_per_step",
                        "host_us_per_step",
                    ],
                    rows,
                )
            ],
        )
    ]


def _is_optimizer_step(name: str) -> bool:
    return name.startswith(OPTIMIZER_PREFIX)
