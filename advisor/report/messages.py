"""The message catalogue: every user-facing report string, in English and Chinese.

Catalogues live in `messages/<language>.json` plus one file per check module in
`messages/<language>/<module>.json` (so that each check owns its strings). A value is a `str.format`
template or a list of them (suggestion lists). A key missing from a translation falls back to English.
A number that is not finite is never printed ("nan%" in a title): it reads "n/a", with a warning.
Messages worded per device (`for_device`): `key.gpu` / `key.cpu` replace `key` on those devices where
the catalogue has them (a GPU trace names CUDA calls and torch.cuda, not CANN and torch_npu).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..options import LANGUAGES
from ..ranges import number_ranges

if TYPE_CHECKING:
    from ..formats.training_log import TrainingLogSummary
    from ..model import DeviceCount
    from .model import InputInfo

_DIR = Path(__file__).with_name("messages")


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _catalogue(language: str) -> dict[str, Any]:
    strings = _read(_DIR / f"{language}.json")
    for part in sorted((_DIR / language).glob("*.json")):
        fragment = _read(part)
        clash = sorted(set(fragment) & set(strings))
        if clash:
            raise ValueError(f"{part}: message keys defined twice: {', '.join(clash)}")
        strings.update(fragment)
    return strings


class NonFiniteValue(RuntimeWarning):
    """A message was given a NaN or infinite number: a bug in the code that computed it (the tests
    turn this warning into an error; a report shows "n/a")."""


class _NotAvailable:
    """Stands for a non-finite number in a template, whatever its format spec."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __format__(self, spec: str) -> str:
        return self.text


class Messages:
    """`t(key, **values)` -> the text of `key` in the chosen language."""

    def __init__(self, language: str = "en") -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {language!r}")
        self.language = language
        self.device: str | None = None
        self._strings = _catalogue(language)
        self._fallback = _catalogue("en")

    def for_device(self, device: str) -> Messages:
        """These messages worded for `device` (model.DEVICES): a key with a `.<device>` variant gives
        that variant; every other key its own text."""
        worded = copy.copy(self)
        worded.device = device
        return worded

    def _raw(self, key: str) -> Any:
        if self.device is not None:
            specific = f"{key}.{self.device}"
            if specific in self._strings or specific in self._fallback:
                key = specific
        if key in self._strings:
            return self._strings[key]
        return self._fallback[key]  # KeyError: a key used in code but missing from en.json is a bug

    def _finite(self, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """`values` with every NaN or infinite number replaced by "n/a" (and a warning naming it)."""
        bad = [name for name, v in values.items() if isinstance(v, numbers.Real) and not math.isfinite(v)]
        if not bad:
            return values
        warnings.warn(
            f"message {key!r}: {', '.join(f'{n}={values[n]}' for n in bad)} printed as n/a",
            NonFiniteValue,
            stacklevel=3,
        )
        missing = _NotAvailable(self._raw("common.not_available"))
        return {**values, **dict.fromkeys(bad, missing)}

    def t(self, key: str, **values: Any) -> str:
        template = self._raw(key)
        if not isinstance(template, str):
            raise TypeError(f"message {key!r} is a list; use t_list")
        return template.format(**self._finite(key, values))

    def tn(self, key: str, count: int, **values: Any) -> str:
        """`key.one` for a count of 1, else `key.other`, with `count` among the values: English needs
        both, a language without plural forms (Chinese) gives both the same text."""
        return self.t(f"{key}.{'one' if count == 1 else 'other'}", count=count, **values)

    def t_list(self, key: str, **values: Any) -> list[str]:
        templates = self._raw(key)
        if isinstance(templates, str):
            templates = [templates]
        values = self._finite(key, values)
        return [item.format(**values) for item in templates]

    def has(self, key: str) -> bool:
        return key in self._fallback


def catalogue_keys(language: str) -> set[str]:
    return set(_catalogue(language))


def profile_line(
    m: Messages,
    *,
    ranks: int,
    export: str,
    steps: Sequence[int],
    format: str = "",
    devices: Sequence[DeviceCount] = (),
) -> str:
    """What was analysed, in `m`'s language: the report's profile line, the CLI's first summary line
    and the server's answer to a path typed in the panel. Ascend data: '2 ranks, text export, steps
    12–14'; a format with a name of its own in the catalogue (`report.profile.source.<format>`):
    'PyTorch profiler trace (GPU: NVIDIA A100-SXM4-80GB ×8), 8 ranks, steps 12–14'."""
    rank_text = m.tn("report.header.rank_count", ranks)
    step_text = (
        m.tn("report.profile.steps", len(steps), steps=number_ranges(list(steps)))
        if steps
        else m.t("report.profile.steps.none")
    )
    source_key = f"report.profile.source.{format}"
    if format and m.has(source_key):
        source = m.t(source_key, devices=describe_devices(m, devices))
        return m.t("report.profile.line_source", source=source, ranks=rank_text, steps=step_text)
    key = f"report.profile.export.{export}"
    return m.t(
        "report.profile.line", ranks=rank_text, export=m.t(key) if m.has(key) else export, steps=step_text
    )


def describe_input(m: Messages, info: InputInfo) -> str:
    """The profile line of a report's input."""
    return profile_line(
        m,
        ranks=len(info.ranks),
        export=info.export,
        steps=info.steps,
        format=info.format,
        devices=info.devices,
    )


def describe_devices(m: Messages, devices: Sequence[DeviceCount]) -> str:
    """'GPU: NVIDIA A100-SXM4-80GB ×8', 'GPU: NVIDIA A100 ×4, NVIDIA H100 ×4', 'CPU', 'GPU ×2; CPU':
    the ranks counted by device kind, then by model where the data records one."""
    by_kind: dict[str, list[DeviceCount]] = {}
    for count in devices:
        by_kind.setdefault(count.device, []).append(count)
    parts = []
    for kind, counts in by_kind.items():
        label = m.t(f"report.device.{kind}") if m.has(f"report.device.{kind}") else kind.upper()
        named = [c for c in counts if c.type]
        if not named:
            total = sum(c.ranks for c in counts)
            # A CPU is not a device one counts: "(CPU)" whatever the number of ranks.
            parts.append(
                label
                if total == 1 or kind == "cpu"
                else m.t("report.profile.device.count", device=label, count=total)
            )
            continue
        models = [
            m.t("report.profile.device.count", device=c.type, count=c.ranks) if c.ranks > 1 else str(c.type)
            for c in named
        ]
        unnamed = sum(c.ranks for c in counts if not c.type)
        if unnamed:
            models.append(
                m.t("report.profile.device.count", device=m.t("report.profile.device.unnamed"), count=unnamed)
            )
        parts.append(
            m.t(
                "report.profile.device.models", device=label, models=m.t("report.list_separator").join(models)
            )
        )
    return m.t("report.profile.device.separator").join(parts)


def training_log_line(m: Messages, summary: TrainingLogSummary) -> str:
    """A training log in one line, in `m`'s language: 'LLaMA-Factory log, 1,200 records, steps
    10–12,000' (the panel's answer to a typed path, the report's Training header)."""
    source = m.t(f"training.log.source.{summary.format}")
    key = "training.log.records_approximate" if summary.approximate else "training.log.records"
    records = m.tn(key, summary.records)
    if summary.first_step is None or summary.last_step is None:
        return m.t("training.log.line_no_steps", source=source, records=records)
    steps = (
        m.t("training.log.step", first=summary.first_step)
        if summary.first_step == summary.last_step
        else m.t("training.log.steps", first=summary.first_step, last=summary.last_step)
    )
    return m.t("training.log.line", source=source, records=records, steps=steps)
