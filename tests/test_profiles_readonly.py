"""Input is read-only: reading every table and analysing changes no byte, mode or file of the input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from advisor.engine import run_analysis
from advisor.errors import InputError
from advisor.formats import discover, load_table, table_names

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path, demo


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and folder under root: content hash, mode and mtime."""
    state = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(root))] = (digest, stat.st_mode, stat.st_mtime_ns)
    return state


def read_everything(root: Path) -> int:
    """Load every table of every rank (a table the data cannot give is fine); how many loaded."""
    loaded = 0
    for rank in discover(root).ranks:
        for name in table_names():
            try:
                load_table(name, rank, use_cache=False)
                loaded += 1
            except InputError:
                pass
    run_analysis(root)
    return loaded


@pytest.mark.parametrize("corpus", [TEXT_CORPUS, DB_CORPUS], ids=["text", "db"])
def test_reading_the_corpus_changes_nothing(corpus):
    root = corpus_path(corpus)
    before = snapshot(root)
    assert read_everything(root) >= 2 * 10  # most tables exist in both exports
    assert snapshot(root) == before


def test_reading_a_generated_profile_changes_nothing(tmp_path):
    root, _ = demo(tmp_path)
    before = snapshot(root)
    read_everything(root)
    assert snapshot(root) == before
