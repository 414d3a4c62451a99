"""The wire format has one source of truth (advisor/server/models.py); the TypeScript mirror follows it."""

from __future__ import annotations

import re
from pathlib import Path

from advisor.options import options_schema
from advisor.server.models import TASK_KEYS, TASK_LIST_KEYS, TASK_SUMMARY_KEYS

TOKENS = Path(__file__).parents[1] / "src" / "tokens.ts"


def interface_keys(name: str) -> list[str]:
    """The keys of a TypeScript interface, those of the interface it extends first."""
    found = re.search(rf"export interface {name}(?: extends (\w+))? \{{(.*?)\n\}}", TOKENS.read_text(), re.S)
    assert found, f"interface {name} not found in {TOKENS}"
    text = re.sub(r"/\*.*?\*/", "", found.group(2), flags=re.S)
    inherited = interface_keys(found.group(1)) if found.group(1) else []
    return inherited + re.findall(r"^\s*(\w+)\??:", text, re.M)


def test_task_interfaces_mirror_the_server():
    assert tuple(interface_keys("ITaskSummary")) == TASK_SUMMARY_KEYS
    assert tuple(interface_keys("ITask")) == TASK_KEYS


def test_task_list_reply_mirrors_the_server():
    assert tuple(interface_keys("ITaskListReply")) == TASK_LIST_KEYS


def test_options_interface_mirrors_the_option_table():
    assert sorted(interface_keys("IAnalysisOptions")) == sorted(options_schema())
