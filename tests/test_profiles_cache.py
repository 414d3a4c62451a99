"""The on-disk table cache: hits, invalidation by a changed file or reader, limits, read-only inputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from advisor.formats import cache, discover, format_named, load_table
from advisor.formats.ascend_common.folder import output_file
from advisor.formats.ascend_text import step_trace as step_trace_module
from advisor.formats.tables import source_files

from .engine_fixtures import PROJECT_ROOT, demo


@pytest.fixture(autouse=True)
def cache_small_sources(monkeypatch):
    """The demo's files are small: these tests cache them (the size rule has tests of its own)."""
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB", "0")


@pytest.fixture
def counted_reads(monkeypatch):
    """Count how often the step_trace CSV is parsed."""
    calls = []
    original = step_trace_module.read_step_trace_csv

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(step_trace_module, "read_step_trace_csv", counting)
    return calls


def test_second_load_comes_from_the_cache(tmp_path, table_cache, counted_reads):
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    first = load_table("step_trace", rank)
    again = load_table("step_trace", rank)
    assert len(counted_reads) == 1
    pd.testing.assert_frame_equal(first, again)
    assert again.attrs == first.attrs
    assert len(list(table_cache.glob("step_trace-*.parquet"))) == 1


def test_small_sources_are_read_again_not_cached(tmp_path, monkeypatch, table_cache, counted_reads):
    # Under the size rule a second load parses the file again, stores nothing and imports no Parquet.
    monkeypatch.delenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB")
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    assert output_file(rank, "step_trace_time.csv").stat().st_size < cache.min_source_bytes()
    first = load_table("step_trace", rank)
    again = load_table("step_trace", rank)
    assert len(counted_reads) == 2
    assert list(table_cache.iterdir()) == []
    pd.testing.assert_frame_equal(first, again)


def test_loading_small_sources_imports_no_parquet(tmp_path, monkeypatch):
    # Importing pyarrow.parquet cost a cold CLI run ~40 ms when the cache stored even small tables.
    monkeypatch.delenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB")
    root, _ = demo(tmp_path, ranks=1)
    probe = (
        "import sys\n"
        "from advisor.formats import discover, load_table\n"
        "rank = discover(sys.argv[1]).ranks[0]\n"
        "for name in ('step_trace', 'kernels', 'device_tasks', 'comm_ops'):\n"
        "    load_table(name, rank)\n"
        "print(sorted(m for m in sys.modules if m.startswith('pyarrow.')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(root)], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert run.returncode == 0, run.stderr
    loaded = run.stdout.strip()
    assert "pyarrow.parquet" not in loaded and "pyarrow.dataset" not in loaded, loaded


def test_sources_over_the_size_rule_are_cached(tmp_path, monkeypatch, table_cache, counted_reads):
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    loader = format_named(rank.format).tables()["step_trace"]
    size = sum(path.stat().st_size for path in source_files(rank, loader.sources))
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB", str(size / 2**20))  # exactly its size: cached
    first = load_table("step_trace", rank)
    again = load_table("step_trace", rank)
    assert len(counted_reads) == 1
    assert len(list(table_cache.glob("step_trace-*.parquet"))) == 1
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB", str((size + 1) / 2**20))  # one byte short
    parsed = load_table("step_trace", rank)
    assert len(counted_reads) == 2
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, parsed)
    assert parsed.attrs == again.attrs == first.attrs


def test_a_miss_reads_no_parquet(tmp_path, monkeypatch, table_cache):
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("read a missing entry"))
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    load_table("step_trace", rank)
    assert len(list(table_cache.glob("step_trace-*.parquet"))) == 1


def test_a_changed_source_file_misses(tmp_path, counted_reads):
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    before = load_table("step_trace", rank)
    csv = output_file(rank, "step_trace_time.csv")
    csv.write_bytes(csv.read_bytes().replace(b"\r\n12,", b"\r\n112,", 1))
    os.utime(csv, ns=(csv.stat().st_atime_ns, csv.stat().st_mtime_ns + 1_000_000))
    after = load_table("step_trace", rank)
    assert len(counted_reads) == 2
    assert list(before.step) != list(after.step) and 112 in list(after.step)


def test_a_changed_reader_misses(tmp_path, monkeypatch, counted_reads):
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    load_table("step_trace", rank)
    monkeypatch.setattr(cache, "code_fingerprint", lambda module: "edited-reader")
    load_table("step_trace", rank)
    assert len(counted_reads) == 2


def test_cache_can_be_switched_off(tmp_path, monkeypatch, table_cache, counted_reads):
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE", "off")
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    load_table("step_trace", rank)
    load_table("step_trace", rank)
    assert len(counted_reads) == 2
    assert list(table_cache.iterdir()) == []


def test_a_corrupt_entry_is_read_again(tmp_path, table_cache, counted_reads):
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    expected = load_table("step_trace", rank)
    [entry] = table_cache.glob("*.parquet")
    entry.write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(load_table("step_trace", rank), expected)
    assert len(counted_reads) == 2


def test_never_caches_inside_the_input(tmp_path, monkeypatch, counted_reads):
    root, _ = demo(tmp_path, ranks=1)
    rank = discover(root).ranks[0]
    inside = rank.path / "cache"
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE", str(inside))
    load_table("step_trace", rank)
    assert not inside.exists()


def test_pruning_keeps_the_cache_under_its_limit(tmp_path, monkeypatch, table_cache):
    for index in range(5):
        (table_cache / f"t-{index}.parquet").write_bytes(b"x" * 400_000)
        os.utime(table_cache / f"t-{index}.parquet", (index, index))
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MB", "1")
    cache.prune(table_cache)
    assert sorted(p.name for p in table_cache.iterdir()) == ["t-3.parquet", "t-4.parquet"]


def counted_prunes(monkeypatch) -> list:
    """The folders measured (pruned) from now on, by a process that has written nothing yet."""
    monkeypatch.setattr(cache, "_ALLOWANCE", {})
    scans: list = []
    original = cache.prune
    monkeypatch.setattr(cache, "prune", lambda folder, **kw: scans.append(folder) or original(folder, **kw))
    return scans


def test_writes_measure_the_cache_only_when_it_may_be_full(tmp_path, monkeypatch, table_cache):
    # Measuring the folder stats every entry: after each write, a cold analysis of many ranks would
    # be quadratic. A process measures on its first write and then once per tenth of the limit.
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MB", "2")
    scans = counted_prunes(monkeypatch)
    rng = np.random.default_rng(0)
    for index in range(60):  # ~80 KB each (random floats do not compress): ~4.8 MB written
        cache.store(f"t-{index:02d}.parquet", pd.DataFrame({"x": rng.random(10_000)}), [tmp_path / "in"])
    sizes = [p.stat().st_size for p in table_cache.glob("*.parquet")]
    assert 2 * 2**20 * 0.8 < sum(sizes) <= 2 * 2**20 * 1.1 + max(sizes)  # pruned to about the limit
    assert 10 <= len(scans) <= 30  # not once per write (60), not never
    assert (table_cache / "t-59.parquet").exists() and not (table_cache / "t-00.parquet").exists()


def test_a_new_process_trusts_the_ledger_instead_of_measuring(tmp_path, monkeypatch, table_cache):
    # A cold run's first write used to stat every entry (1.1 s on a cache of 130k entries).
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MB", "2")
    scans = counted_prunes(monkeypatch)
    frame = pd.DataFrame({"x": np.random.default_rng(0).random(10_000)})  # ~80 KB
    cache.store("first.parquet", frame, [tmp_path / "in"])
    assert len(scans) == 1  # no ledger yet: measured
    size = (table_cache / "first.parquet").stat().st_size
    assert cache._ledger_total(table_cache) == size

    monkeypatch.setattr(cache, "_ALLOWANCE", {})  # another process
    cache.store("second.parquet", frame, [tmp_path / "in"])
    assert len(scans) == 1 and cache._ledger_total(table_cache) == 2 * size

    (table_cache / cache.LEDGER).write_text(f"{2 * 2**20}\n", encoding="ascii")  # it says: full
    monkeypatch.setattr(cache, "_ALLOWANCE", {})
    cache.store("third.parquet", frame, [tmp_path / "in"])
    assert len(scans) == 2  # measured, and the ledger holds the measurement again
    assert cache._ledger_total(table_cache) == sum(p.stat().st_size for p in table_cache.glob("*.parquet"))
