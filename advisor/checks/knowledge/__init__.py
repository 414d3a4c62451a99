"""What the checks know that is data, not code: thresholds, nominal values and advice tables, one
JSON file per subject in this folder (docs/design.md "Knowledge files")."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent


@cache
def knowledge(name: str) -> Any:
    """knowledge/<name>.json, read once per process; shared between callers, so never modified."""
    with (FOLDER / f"{name}.json").open(encoding="utf-8") as fh:
        return json.load(fh)
