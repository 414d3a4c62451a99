"""Table `device_info`: what the device recorded about itself in `PROF_*/device_*/info.json.N`.

One row per DeviceInfo entry of every such file (files in path order, entries in file order), so the
checks pick the entry they trust: the computation checks the first entry of the first file, memory the
first entry with an HBM capacity. An absent, unreadable or oversized file gives no rows (it tells us
nothing; the checks then fall back on the device model's table), never an error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ...model import RankInfo
from ..schema import conform
from ..tables import register_table
from .folder import read_small_json

# Device ids are one or two digits; `info.json.N.done` (a marker, no JSON) is not a source.
DEVICE_INFO_SOURCES = ("PROF_*/device_*/info.json.[0-9]", "PROF_*/device_*/info.json.[0-9][0-9]")


def _number(value: Any) -> float:
    """float(value) for numbers and numeric text, NaN otherwise."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _positive_int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if math.isfinite(number) and number > 0 else None


def _hbm_capacity_mb(value: Any) -> float | None:
    # Only a JSON number counts: the memory check never trusted a capacity written as text.
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _info_files(rank_dir: Path) -> list[Path]:
    try:
        found = {p for pattern in DEVICE_INFO_SOURCES for p in rank_dir.glob(pattern)}
    except OSError:
        return []
    return sorted(p for p in found if p.is_file())


def device_info_rows(rank_dir: Path) -> list[dict[str, Any]]:
    """The DeviceInfo entries of the rank folder's device info files."""
    rows = []
    for path in _info_files(rank_dir):
        data = read_small_json(path)
        entries = data.get("DeviceInfo") if isinstance(data, dict) else None
        for entry, info in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(info, dict):
                continue
            mhz = _number(info.get("aic_frequency"))
            rows.append(
                {
                    "source": path.relative_to(rank_dir).as_posix(),
                    "entry": entry,
                    "ai_core_num": _positive_int(info.get("ai_core_num")),
                    "aiv_num": _positive_int(info.get("aiv_num")),
                    "aic_mhz": mhz if mhz > 0 else None,
                    "hbm_capacity_mb": _hbm_capacity_mb(info.get("hbm_capacity_mb")),
                }
            )
    return rows


def load_device_info(rank: RankInfo) -> pd.DataFrame:
    rows = device_info_rows(rank.path)
    out = conform(pd.DataFrame(rows), "device_info")
    read = ", ".join(dict.fromkeys(row["source"] for row in rows))
    out.attrs["source"] = read or "no PROF_*/device_*/info.json.N with DeviceInfo"
    return out


# The device writes these files whatever the export: every Ascend format lists this reader module.
for _format in ("ascend_text", "ascend_db", "ascend_cluster"):
    register_table("device_info", _format, sources=DEVICE_INFO_SOURCES)(load_device_info)
