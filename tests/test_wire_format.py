"""The wire format has one source of truth (advisor/server/models.py); the TypeScript mirror follows it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from advisor.options import options_schema
from advisor.server.models import TASK_KEYS, TASK_LIST_KEYS, TASK_SUMMARY_KEYS

SRC = Path(__file__).parents[1] / "src"
# tokens.ts and the generated options types it re-exports.
SOURCES = (SRC / "tokens.ts", SRC / "options.ts")


def interface_keys(name: str) -> list[str]:
    """The keys of a TypeScript interface, those of the interfaces it extends first (in order)."""
    text = "\n".join(path.read_text() for path in SOURCES)
    found = re.search(rf"export interface {name}(?: extends ([\w, ]+))? \{{(.*?)\n\}}", text, re.S)
    assert found, f"interface {name} not found in {', '.join(map(str, SOURCES))}"
    body = re.sub(r"/\*.*?\*/", "", found.group(2), flags=re.S)
    bases = found.group(1).split(", ") if found.group(1) else []
    inherited = [key for base in bases for key in interface_keys(base)]
    return inherited + re.findall(r"^\s*(\w+)\??:", body, re.M)


def test_task_interfaces_mirror_the_server():
    assert tuple(interface_keys("ITaskSummary")) == TASK_SUMMARY_KEYS
    assert tuple(interface_keys("ITask")) == TASK_KEYS


def test_task_list_reply_mirrors_the_server():
    assert tuple(interface_keys("ITaskListReply")) == TASK_LIST_KEYS


def test_options_interface_mirrors_the_option_table():
    assert sorted(interface_keys("IAnalysisOptions")) == sorted(options_schema())


def test_typescript_option_types_are_generated_from_the_model():
    spec = importlib.util.spec_from_file_location("options_ts", SRC.parent / "scripts" / "options_ts.py")
    assert spec and spec.loader
    options_ts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(options_ts)
    assert options_ts.render() == (SRC / "options.ts").read_text(), "stale: run python scripts/options_ts.py"
