"""environment.variables: CANN / torch_npu environment settings that slow the run, and ranks that disagree.

Input: the `environment` table of each rank (ENV_VARIABLES as it recorded them: profiler_metadata.json,
or the db's META_DATA for a db export); the facts a rule asks about come from the rank's kernels, CANN
API and memory tables, read on demand. The advice table is data (knowledge/environment.json). Unlike the
reference, a setting is only advised when the profile shows the situation it is for (e.g. the dynamic-
shape cache only when kernels run with dynamic shapes); a variable the rank did not record is not
judged, and an empty value means the CANN default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import PRIORITIES, Evidence, Finding
from .common import finding, recorded_env
from .knowledge import knowledge
from .registry import NPU_ONLY, ClusterContext, NotEvaluated, check
from .schedule_base import COMPILE, COMPILE_EXECUTE

CHECK_ID = "environment.variables"
# A kernel's entry in the aclnn operator cache: its type, input shapes and dtypes.
SIGNATURE = ("op_type", "input_shapes", "input_dtypes")


@dataclass(frozen=True)
class Rule:
    """One row of the advice table."""

    name: str
    default: str
    recommended: str
    flag: Mapping[str, Any]
    priority: str = "low"
    priority_by_value: Mapping[str, str] = field(default_factory=dict)
    requires: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def effective(self, value: str) -> str:
        """The value in force: an empty record means the CANN default."""
        return value.strip() or self.default

    def priority_of(self, value: str) -> str:
        return self.priority_by_value.get(self.effective(value), self.priority)


@cache
def load_rules() -> tuple[Rule, ...]:
    data = knowledge("environment")
    known = {"name", "default", "recommended", "flag", "priority", "priority_by_value"}
    known.add("requires")
    return tuple(
        Rule(
            name=item["name"],
            default=str(item.get("default", "")),
            recommended=str(item.get("recommended", "")),
            flag=item.get("flag", {}),
            priority=item.get("priority", "low"),
            priority_by_value=item.get("priority_by_value", {}),
            requires=item.get("requires"),
            params={k: v for k, v in item.items() if k not in known},
        )
        for item in data["variables"]
    )


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("+-").isdigit() else None


def value_flagged(rule: Rule, value: str) -> bool:
    """Whether the value in force meets the rule's condition (before any data requirement)."""
    flag, raw, current = rule.flag, value.strip(), rule.effective(value)
    number = _int(current)
    if not flag:
        return False
    if "non_empty" in flag:
        return bool(raw)
    if "lacks" in flag:
        return str(flag["lacks"]).lower() not in current.replace(" ", "").lower()
    if "outside" in flag:
        if not raw:  # unset: HCCL uses its (valid) default
            return False
        low, high = flag["outside"]
        step = int(flag.get("multiple_of", 1))
        return number is None or not low <= number <= high or number % step != 0
    if number is None:  # a non-numeric value of a numeric setting: cannot judge
        return False
    if "int_equals" in flag:
        return number == int(flag["int_equals"])
    if "int_below" in flag:
        return number < int(flag["int_below"])
    return False


# A data fact: (rule, rank, value) -> (holds: True/False/None when unknown, what the data shows).
FactFn = Callable[[Rule, int, str], "tuple[bool | None, str]"]


@dataclass
class Verdict:
    rule: Rule
    value: str
    ranks: list[int]
    status: str  # flagged | ok | not_needed | unknown | no_rule
    priority: str
    data: str = ""


def evaluate(envs: Mapping[int, Mapping[str, str]], rules: tuple[Rule, ...], facts: FactFn) -> list[Verdict]:
    """One verdict per (variable, value) recorded by the ranks in `envs`."""
    verdicts = []
    for rule in rules:
        by_value: dict[str, list[int]] = {}
        for rank, env in sorted(envs.items()):
            if rule.name in env:
                by_value.setdefault(str(env[rule.name]), []).append(rank)
        for value, ranks in by_value.items():
            verdict = Verdict(rule, value, ranks, "ok", rule.priority_of(value))
            if not rule.flag:
                verdict.status = "no_rule"
            elif value_flagged(rule, value):
                verdict.status = "flagged"
                if rule.requires:
                    holds, verdict.data = facts(rule, ranks[0], value)
                    verdict.status = {True: "flagged", False: "not_needed", None: "unknown"}[holds]
            verdicts.append(verdict)
    return verdicts


def differences(envs: Mapping[int, Mapping[str, str]]) -> dict[str, dict[str, list[int]]]:
    """Variables whose value is not the same on every rank that recorded ENV (absent counts as a value)."""
    names = sorted({name for env in envs.values() for name in env})
    out = {}
    for name in names:
        by_value: dict[str, list[int]] = {}
        for rank, env in sorted(envs.items()):
            by_value.setdefault(env.get(name, "\0"), []).append(rank)
        if len(by_value) > 1:
            out[name] = by_value
    return out


class ProfileFacts:
    """The data facts the rules ask about, from one rank's tables: the check's on-demand tables, so
    only a rule whose value is questionable costs a table read, and only for the first rank holding it."""

    def __init__(self, tables: Mapping[int, Mapping[str, pd.DataFrame]], messages: Messages) -> None:
        self.tables = tables
        self.m = messages

    def table(self, name: str, rank: int) -> pd.DataFrame | None:
        """The rank's table, None when it could not be read (the fact is then unknown)."""
        return self.tables.get(rank, {}).get(name)

    def __call__(self, rule: Rule, rank: int, value: str) -> tuple[bool | None, str]:
        return getattr(self, rule.requires or "")(rule, rank, value)

    def dynamic_shapes(self, rule: Rule, rank: int, value: str) -> tuple[bool | None, str]:
        kernels = self.table("kernels", rank)
        states = kernels["op_state"].dropna().str.lower() if kernels is not None else pd.Series([], dtype=str)
        if states.empty:
            # Without OP State (db exports), operators compiled online in the profiled steps show it:
            # a static shape is compiled once, before the steps that are profiled.
            cann = self.table("runtime_api", rank)
            compiles = 0 if cann is None else int(cann["name"].isin([COMPILE_EXECUTE, COMPILE]).sum())
            if compiles:
                return True, self.m.t(f"{CHECK_ID}.fact.online_compile", rank=rank, compiles=compiles)
            return None, self.m.t(f"{CHECK_ID}.fact.no_op_state", rank=rank)
        dynamic = int((states == "dynamic").sum())
        text = self.m.t(f"{CHECK_ID}.fact.dynamic", rank=rank, dynamic=dynamic, total=len(states))
        return dynamic > 0, text

    def aclnn_cache_pressure(self, rule: Rule, rank: int, value: str) -> tuple[bool | None, str]:
        kernels = self.table("kernels", rank)
        if kernels is None or kernels["input_shapes"].isna().all():
            return None, self.m.t(f"{CHECK_ID}.fact.no_shapes", rank=rank)
        keys = (kernels[c].astype("string").fillna("").to_numpy(dtype=object) for c in SIGNATURE)
        signatures = len(set(zip(*keys, strict=True)))
        limit = _int(rule.effective(value)) or 0
        share = float(rule.params.get("fill_share", 0.5))
        text = self.m.t(f"{CHECK_ID}.fact.signatures", rank=rank, signatures=signatures, limit=limit)
        return signatures >= share * limit, text

    def memory_fragmentation(self, rule: Rule, rank: int, value: str) -> tuple[bool | None, str]:
        memory = self.table("memory_record", rank)
        if memory is None:
            return None, self.m.t(f"{CHECK_ID}.fact.no_memory", rank=rank)
        allocated = memory["allocated_bytes"].to_numpy(dtype="float64", na_value=np.nan)
        reserved = memory["reserved_bytes"].to_numpy(dtype="float64", na_value=np.nan)
        rows = ~np.isnan(allocated) & (reserved > 0)
        pta = rows & (memory["component"].str.upper() == "PTA").to_numpy(dtype=bool, na_value=False)
        rows = pta if pta.any() else rows  # the framework's own allocator when recorded
        if not rows.any():
            return None, self.m.t(f"{CHECK_ID}.fact.no_memory", rank=rank)
        # Reserved memory that even the peak demand never used: what fixed-size segments cost.
        reserved, allocated = float(reserved[rows].max()), float(allocated[rows].max())
        share = max(0.0, 1.0 - allocated / reserved)
        text = self.m.t(
            f"{CHECK_ID}.fact.fragmentation",
            rank=rank,
            share=share,
            reserved_gib=reserved / 2**30,
            allocated_gib=allocated / 2**30,
        )
        return share >= float(rule.params.get("fragmentation_share", 0.25)), text


def _ranks_text(ranks: list[int]) -> str:
    return ", ".join(map(str, ranks))


def _worst(priorities: list[str]) -> str:
    return min(priorities, key=PRIORITIES.index) if priorities else "low"


@check(
    CHECK_ID,
    "overall",
    needs=frozenset({"step_trace"}),
    scope="cluster",
    # Read here, not sent by every rank: the environment of each rank (one whose environment could not
    # be read counts as one that recorded none), and the facts' tables for the first rank that needs them.
    on_demand=frozenset({"environment", "kernels", "runtime_api", "memory_record"}),
    devices=NPU_ONLY,
)
def environment_variables(ctx: ClusterContext) -> list[Finding]:
    m = ctx.messages
    recorded = {rank: recorded_env(tables.get("environment")) for rank, tables in ctx.tables.items()}
    envs = {rank: env for rank, env in recorded.items() if env}
    if not envs:
        raise NotEvaluated(m.t(f"{CHECK_ID}.no_env"))
    return env_findings(m, envs, sorted(set(recorded) - set(envs)), load_rules(), ProfileFacts(ctx.tables, m))


def env_findings(
    m: Messages,
    envs: Mapping[int, Mapping[str, str]],
    unrecorded: list[int],
    rules: tuple[Rule, ...],
    facts: FactFn,
) -> list[Finding]:
    """The finding (or none) for the recorded environments."""
    verdicts = evaluate(envs, rules, facts)
    flagged = [v for v in verdicts if v.status == "flagged"]
    known = {r.name for r in rules}
    differ = {name: groups for name, groups in differences(envs).items() if name in known}
    if not flagged and not differ:
        return []

    # No gain of its own: what a setting costs shows where it is measured (synchronous launches in
    # schedule.synchronize_stream, idle time in overall.idle), so the advice is at most medium.
    priority = _worst([v.priority for v in flagged])
    if not flagged:
        priority = "low"  # ranks that disagree, with no harmful setting: worth a look, nothing more

    lines = [m.t(f"{CHECK_ID}.intro", ranks=len(envs))]
    for v in flagged:
        lines.append(
            m.t(
                f"{CHECK_ID}.line",
                name=v.rule.name,
                value=v.value or m.t(f"{CHECK_ID}.unset"),
                ranks=_ranks_text(v.ranks),
                recommended=v.rule.recommended or m.t(f"{CHECK_ID}.unset"),
                why=m.t(f"{CHECK_ID}.var.{v.rule.name}.why"),
            )
            + (f" {v.data}" if v.data else "")
        )
    for v in verdicts:
        if v.status == "not_needed":
            lines.append(m.t(f"{CHECK_ID}.not_needed", name=v.rule.name, data=v.data))
    if differ:
        lines.append(m.t(f"{CHECK_ID}.differ", names=", ".join(differ)))
    if unrecorded:
        lines.append(m.t(f"{CHECK_ID}.unrecorded", ranks=_ranks_text(unrecorded)))

    suggestions = [
        s
        for v in flagged
        for s in m.t_list(f"{CHECK_ID}.var.{v.rule.name}.suggestion", recommended=v.rule.recommended)
    ]
    if differ:
        suggestions.append(m.t(f"{CHECK_ID}.suggestion.differ", names=", ".join(differ)))
    names = [v.rule.name for v in flagged]
    title = (
        m.t(f"{CHECK_ID}.title", count=len(names), names=", ".join(dict.fromkeys(names)))
        if flagged
        else m.t(f"{CHECK_ID}.title.differ", count=len(differ))
    )
    rows = [
        [
            v.rule.name,
            v.value,
            v.rule.effective(v.value),
            _ranks_text(v.ranks),
            v.rule.recommended,
            m.t(f"{CHECK_ID}.status.{v.status}"),
            v.priority if v.status == "flagged" else "",
            v.data,
        ]
        for v in verdicts
    ]
    evidence = [
        Evidence(
            m.t(f"{CHECK_ID}.evidence.settings"),
            ["variable", "value", "value_in_force", "ranks", "recommended", "status", "priority", "data"],
            rows,
        )
    ]
    if differ:
        evidence.append(
            Evidence(
                m.t(f"{CHECK_ID}.evidence.differences"),
                ["variable", "value", "ranks"],
                [
                    [name, m.t(f"{CHECK_ID}.not_recorded") if value == "\0" else value, _ranks_text(ranks)]
                    for name, groups in differ.items()
                    for value, ranks in groups.items()
                ],
            )
        )
    ranks = {r for v in flagged for r in v.ranks}
    ranks |= {r for groups in differ.values() for rs in groups.values() for r in rs}
    return [
        finding(
            title=title,
            lines=lines,
            suggestions=suggestions,
            ranks=sorted(ranks),
            priority=priority,
            evidence=evidence,
        )
    ]
