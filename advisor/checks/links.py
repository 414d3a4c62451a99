"""One row per cause: findings that explain each other are linked, not ranked twice.

Several checks see one problem from different sides: Python GC pauses (schedule.gc) leave the device
idle (overall.idle), make the paused rank slow (cluster.slow_rank) and its peers wait in their
collectives (communication.exposed). Each finding stays in its section, but a symptom whose causes
were found too is counted in them (`Finding.counted_in`) and drops out of the "what to fix first"
ranking, where its cause's row says what else it explains. The links are data
(knowledge/causes.json); this module applies them to the findings of one analysis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ..report.messages import Messages
from ..report.model import Finding
from .knowledge import knowledge

COMPARISON = "comparison."


@dataclass(frozen=True)
class Link:
    symptom: str
    causes: tuple[str, ...]
    same_ranks: bool  # a cause must cover every rank of the symptom
    cover: float  # share of the symptom's gain the causes' gains must reach


def links() -> tuple[Link, ...]:
    return tuple(
        Link(item["symptom"], tuple(item["causes"]), item["ranks"] == "same", float(item["cover"]))
        for item in knowledge("causes")["links"]
    )


def _covers(cause: Finding, symptom: Finding, same_ranks: bool) -> bool:
    if not same_ranks or not symptom.ranks:
        return True
    return bool(cause.ranks) and set(symptom.ranks) <= set(cause.ranks)


def _gain(finding: Finding) -> float:
    return finding.estimated_gain_us or 0.0


def link_causes(findings: Iterable[Finding], messages: Messages, *, baseline: bool = False) -> list[Finding]:
    """The findings with each explained symptom's `counted_in` set and a line on both sides.

    With a baseline run, the comparison findings set this run against the other one: a regression
    is a cause of its own, not the slow rank of this run seen again."""
    found = list(findings)
    by_check: dict[str, list[int]] = {}
    for index, finding in enumerate(found):
        by_check.setdefault(finding.check, []).append(index)
    explains: dict[int, list[int]] = {}
    for link in links():
        if baseline and link.symptom.startswith(COMPARISON):
            continue
        for s in by_check.get(link.symptom, []):
            symptom = found[s]
            causes = [
                c
                for check in link.causes
                for c in by_check.get(check, [])
                if _covers(found[c], symptom, link.same_ranks)
            ]
            if not causes or sum(_gain(found[c]) for c in causes) < link.cover * _gain(symptom):
                continue
            names = list(dict.fromkeys(found[c].check for c in causes))
            note = messages.t("engine.counted_in", checks=", ".join(names))
            found[s] = replace(
                symptom,
                counted_in=names,
                description=f"{symptom.description}\n{note}" if symptom.description else note,
            )
            for c in causes:
                explains.setdefault(c, []).append(s)
    for c, symptoms in explains.items():
        names = ", ".join(dict.fromkeys(found[s].check for s in symptoms))
        note = messages.t("engine.also_explains", checks=names)
        cause = found[c]
        found[c] = replace(cause, description=f"{cause.description}\n{note}" if cause.description else note)
    return found
