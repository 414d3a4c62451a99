"""The wire format has one source of truth (advisor/server/models.py); the TypeScript mirror follows it."""

from __future__ import annotations

import re
from pathlib import Path

from advisor.options import options_schema
from advisor.server.models import TASK_KEYS

TOKENS = Path(__file__).parents[1] / "src" / "tokens.ts"


def interface_keys(name: str) -> list[str]:
    body = re.search(rf"export interface {name} \{{(.*?)\n\}}", TOKENS.read_text(), re.S)
    assert body, f"interface {name} not found in {TOKENS}"
    text = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
    return re.findall(r"^\s*(\w+)\??:", text, re.M)


def test_task_interface_mirrors_the_server():
    assert tuple(interface_keys("ITask")) == TASK_KEYS


def test_options_interface_mirrors_the_option_table():
    assert sorted(interface_keys("IAnalysisOptions")) == sorted(options_schema())
