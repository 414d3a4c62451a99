"""The Kineto trace generator (advisor/synth/kineto) and the real torch traces in tests/data/kineto.

Everything here is measured again from the written files, independently of the generator's own
bookkeeping: the fields each category needs (a table that the real samples in ../shared/corpus and
tests/data/kineto must satisfy too), flow pairs, correlation links, step coverage, and the ground
truth's numbers (a fault's cost re-measured from the events)."""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from advisor.errors import InputError
from advisor.synth.kineto import KINETO_COLLATERAL, KINETO_FAULTS, KinetoSpec, write_kineto_traces
from advisor.synth.kineto.truth import covered, merged

from .engine_fixtures import CORPUS, PROJECT_ROOT, corpus_path

RECORDED = PROJECT_ROOT / "tests" / "data" / "kineto"
US_TOLERANCE = 0.01  # µs: the generator measures in ns, the files hold µs with three decimals

# Role of each category, both spellings (2021 capitalised, current lower case).
ROLES = {
    "cpu_op": "op",
    "user_annotation": "annotation",
    "Operator": "op",
    "cuda_runtime": "runtime",
    "Runtime": "runtime",
    "kernel": "kernel",
    "Kernel": "kernel",
    "gpu_memcpy": "memcpy",
    "Memcpy": "memcpy",
    "gpu_memset": "memset",
    "Memset": "memset",
    "cuda_sync": "sync",
    "python_function": "python",
    "Trace": "trace",
}
GPU_ROLES = {"kernel", "memcpy", "memset"}
# The args every event of a category carries in every real sample (current schema).
REQUIRED_ARGS = {
    "cpu_op": {"External id", "Ev Idx"},
    "cuda_runtime": {"cbid", "correlation"},
    "kernel": {
        "device",
        "context",
        "stream",
        "correlation",
        "registers per thread",
        "shared memory",
        "blocks per SM",
        "warps per SM",
        "grid",
        "block",
        "est. achieved occupancy %",
    },
    "gpu_memcpy": {"device", "context", "stream", "correlation", "bytes", "memory bandwidth (GB/s)"},
    "gpu_memset": {"device", "context", "stream", "correlation", "bytes", "memory bandwidth (GB/s)"},
    "cuda_sync": {"cuda_sync_kind", "stream", "correlation", "device", "context"},
    "gpu_user_annotation": {"External id"},
    "python_function": {"Ev Idx"},
    "Trace": {"Op count"},
    "cpu_instant_event": {
        "Addr",
        "Bytes",
        "Total Allocated",
        "Total Reserved",
        "Device Type",
        "Device Id",
        "Ev Idx",
    },
}
# What torch 2.13 adds (tests/data/kineto) and the generator's new schema must write too.
TORCH_2_13_ARGS = {
    "cpu_op": {"External id", "Record function id", "Ev Idx"},
    "user_annotation": {"External id", "Record function id", "Ev Idx"},
}
# 2021 (kineto-format.md §1): lower-case keys on GPU and runtime events, Operator's trace fields.
OLD_REQUIRED_ARGS = {
    "Operator": {"Device", "External id", "Trace name", "Trace iteration"},
    "Runtime": {"cbid", "correlation"},
    "Kernel": {
        "queued",
        "device",
        "context",
        "stream",
        "correlation",
        "external id",
        "theoretical occupancy %",
    },
    "Memcpy": {
        "device",
        "context",
        "stream",
        "correlation",
        "external id",
        "bytes",
        "memory bandwidth (GB/s)",
    },
}
EVENT_KEYS = {
    "X": {"ph", "cat", "name", "pid", "tid", "ts", "dur", "args"},
    "M": {"ph", "name", "ts", "pid", "tid", "args"},
    "s": {"ph", "id", "pid", "tid", "ts", "cat", "name"},
    "f": {"ph", "id", "pid", "tid", "ts", "cat", "name", "bp"},
    "i": {"ph", "s", "name", "pid", "tid", "ts"},
}


def load(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # sniffed, not trusted from the name
        raw = gzip.decompress(raw)
    return json.loads(raw)


def traces_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name != "ground_truth.json" and not p.name.startswith("."))


def role(event: dict[str, Any]) -> str | None:
    return ROLES.get(event.get("cat", ""))


def abs_us(trace: dict[str, Any], ts: float) -> float:
    return trace.get("baseTimeNanoseconds", 0) / 1000 + ts


def generate(
    tmp_path: Path, name: str = "run", **spec: Any
) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """Traces of KinetoSpec(**spec) in tmp_path/name; returns the folder, the ground truth and the
    traces in rank order."""
    folder = write_kineto_traces(tmp_path / name, KinetoSpec(**spec))
    truth = json.loads((folder / "ground_truth.json").read_text())
    by_rank = sorted(truth["files"].items(), key=lambda item: item[1])
    return folder, truth, [load(folder / file) for file, _ in by_rank]


def missing_fields(events: list[dict[str, Any]], table: dict[str, set[str]]) -> list[str]:
    problems = []
    for event in events:
        keys = EVENT_KEYS.get(event["ph"], set())
        if event["ph"] == "i" and "args" in event:  # [memory]: with a cat since 2022
            keys = keys | ({"args"} if table is OLD_REQUIRED_ARGS else {"cat", "args"})
        if not keys <= event.keys():
            problems.append(f"{event.get('name')}: lacks {sorted(keys - event.keys())}")
        need = table.get(event.get("cat", ""), set())
        if event["ph"] in ("X", "i") and not need <= event.get("args", {}).keys():
            problems.append(
                f"{event['cat']} {event['name'][:40]}: lacks {sorted(need - event['args'].keys())}"
            )
    return problems


def flow_problems(events: list[dict[str, Any]]) -> list[str]:
    """Every flow start has one finish with its (cat, id), each bound to a slice at its (pid, tid, ts)."""
    slices = defaultdict(list)
    for event in events:
        if event["ph"] == "X":
            slices[(event["pid"], str(event["tid"]))].append(event)
    ends: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    problems = []
    for event in events:
        if event["ph"] not in ("s", "f"):
            continue
        ends[(event["cat"], str(event["id"]))][event["ph"]] += 1
        tid = event["tid"]
        candidates = slices[(event["pid"], str(tid))] + slices[(event["pid"], f"stream {tid}")]
        if not any(s["ts"] <= event["ts"] <= s["ts"] + s["dur"] for s in candidates):
            problems.append(f"{event['cat']} {event['ph']} {event['id']} binds to no slice")
    problems += [f"flow {key}: {count}" for key, count in ends.items() if count != Counter({"s": 1, "f": 1})]
    return problems


def steps_of(trace: dict[str, Any]) -> dict[int, tuple[float, float]]:
    out = {}
    for event in trace["traceEvents"]:
        match = re.fullmatch(r"ProfilerStep#(\d+)", event.get("name", ""))
        # Not gpu_user_annotation: the same name again on each GPU stream the step launched on.
        if match and event["ph"] == "X" and event.get("cat") in ("user_annotation", "Operator"):
            out[int(match.group(1))] = (event["ts"], event["ts"] + event["dur"])
    return out


def gpu_events(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((e for e in trace["traceEvents"] if role(e) in GPU_ROLES), key=lambda e: e["ts"])


def idle_until_resumed(trace: dict[str, Any], start: float, end: float) -> float:
    """GPU idle from `start` until the first GPU event starting at or after `end`."""
    gpu = gpu_events(trace)
    resumed = next(e["ts"] for e in gpu if e["ts"] >= end)
    busy = merged([(e["ts"], e["ts"] + e["dur"]) for e in gpu])
    return resumed - start - covered(busy, start, resumed)


def within(events: list[dict[str, Any]], window: tuple[float, float]) -> list[dict[str, Any]]:
    return [e for e in events if window[0] <= e["ts"] <= window[1]]


# ---------------------------------------------------------------------------------------------
# The generator: files and format


@pytest.mark.parametrize(
    ("schema", "compress", "layout"),
    [
        ("new", True, "files"),
        ("new", False, "tensorboard"),
        ("old", False, "files"),
        ("old", True, "tensorboard"),
    ],
)
def test_traces_parse_with_their_names_and_compression(tmp_path, schema, compress, layout):
    folder, truth, traces = generate(tmp_path, schema=schema, gzip=compress, layout=layout)
    names = sorted(truth["files"])
    assert names == [p.name for p in traces_in(folder)]
    digits = 13 if schema == "old" else 19  # tensorboard_trace_handler: ms in old torch, ns in new
    pattern = (
        r"rank\d+\.json" if layout == "files" else rf"synth-gpu-node_\d+\.\d{{{digits}}}\.pt\.trace\.json"
    )
    for name in names:
        assert re.fullmatch(pattern + (r"\.gz" if compress else ""), name)
        assert ((folder / name).read_bytes()[:2] == b"\x1f\x8b") == compress
    for trace in traces:
        assert trace["schemaVersion"] == 1 and trace["traceEvents"]
        assert len(trace["deviceProperties"]) == 8 and trace["deviceProperties"][0]["warpSize"] == 32


def test_new_schema_header_and_timestamps(tmp_path):
    folder, _, traces = generate(tmp_path, gzip=False, profile_memory=True)
    text = (folder / "rank1.json").read_text()
    stamps = re.findall(r'"ts": ([0-9.]+)', text)
    assert stamps and all(re.fullmatch(r"\d+\.\d{3}", s) for s in stamps)  # µs with a ns fraction
    for rank, trace in enumerate(traces):
        assert trace["baseTimeNanoseconds"] % 7_889_238_000_000_000 == 0
        assert trace["displayTimeUnit"] == "ms" and trace["profile_memory"] == 1
        assert trace["with_stack"] == 1  # Python GC events come only with the Python tracer
        assert all(0 <= e["ts"] < 7.9e12 for e in trace["traceEvents"])  # relative to the base
        info = trace["distributedInfo"]
        assert (info["backend"], info["rank"], info["world_size"]) == ("nccl", rank, 2)
        assert (
            info["pg_config"][0]["ranks"] == [0, 1] and info["pg_config"][0]["backend_config"] == "cuda:nccl"
        )
        assert trace["traceName"] == f"rank{rank}.json"
    assert list(json.loads(text))[-1] == "traceName"  # written after traceEvents, as Kineto does


def test_old_schema_is_the_2021_format(tmp_path):
    _, _, old = generate(tmp_path, "old", schema="old", inject=("schedule.gc",))
    _, _, new = generate(tmp_path, "new", inject=("schedule.gc",))
    for trace in old:
        assert not {"baseTimeNanoseconds", "distributedInfo", "displayTimeUnit"} & trace.keys()
        events = trace["traceEvents"]
        cats = {e.get("cat") for e in events}
        assert {"Operator", "Runtime", "Kernel", "Memcpy", "Trace", "async"} <= cats
        assert not cats & {"cpu_op", "user_annotation", "kernel", "python_function", "cuda_sync", "ac2g"}
        timed = [e for e in events if e["ph"] != "M"]
        assert all(isinstance(e["ts"], int) and e["ts"] > 1e14 for e in timed)  # absolute integer µs
        assert all(isinstance(e["tid"], str) for e in events if e["ph"] == "X" and e.get("cat") != "Trace")
        assert all(isinstance(e["tid"], int) for e in events if e["ph"] in ("s", "f"))
        assert all(e["name"] == "launch" for e in events if e.get("cat") == "async")
        assert missing_fields(events, OLD_REQUIRED_ARGS) == []
        assert not any(e["name"] == "record_param_comms" for e in events)
    # The same run: each step lasts as long in both schemas (integer µs lose under 1 µs each end).
    for old_trace, new_trace in zip(old, new, strict=True):
        old_steps, new_steps = steps_of(old_trace), steps_of(new_trace)
        assert old_steps.keys() == new_steps.keys() == {2, 3, 4}
        for step, (start, end) in new_steps.items():
            assert abs((old_steps[step][1] - old_steps[step][0]) - (end - start)) <= 1


SPECS = {
    "healthy": {},
    "old": {"schema": "old", "profile_memory": True},
    "streams_memory": {"streams": 3, "profile_memory": True, "ranks": 3},
    "every_fault": {
        "inject": ("schedule.host_sync", "schedule.gc", "memory.pageable_memcpy", "cluster.slow_rank")
    },
    "launch_exposed": {"inject": ("schedule.launch_overhead", "communication.exposed", "dataloader.slow")},
    "cpu": {"device": "cpu", "profile_memory": True, "inject": ("schedule.gc", "dataloader.slow")},
    "one_rank": {"ranks": 1},
}


@pytest.mark.parametrize("case", SPECS)
def test_events_have_their_categories_fields_and_flows_pair_up(tmp_path, case):
    spec = SPECS[case]
    _, _, traces = generate(tmp_path, **spec)
    table = OLD_REQUIRED_ARGS if spec.get("schema") == "old" else {**REQUIRED_ARGS, **TORCH_2_13_ARGS}
    for trace in traces:
        assert missing_fields(trace["traceEvents"], table) == []
        assert flow_problems(trace["traceEvents"]) == []


@pytest.mark.parametrize("case", ["healthy", "every_fault", "launch_exposed", "streams_memory", "old"])
def test_correlation_links_each_gpu_event_to_its_launch_inside_its_op(tmp_path, case):
    _, _, traces = generate(tmp_path, **SPECS[case])
    old = SPECS[case].get("schema") == "old"
    external_key = "external id" if old else "External id"
    for trace in traces:
        events = trace["traceEvents"]
        runtime = {e["args"]["correlation"]: e for e in events if role(e) == "runtime"}
        assert len(runtime) == sum(role(e) == "runtime" for e in events)  # unique within the process
        ops = {e["args"]["External id"]: e for e in events if role(e) in ("op", "annotation")}
        arrows = {(e["ph"], e["id"]): e for e in events if e.get("cat") in ("ac2g", "async")}
        gpu = [e for e in events if role(e) in GPU_ROLES | {"sync"}]
        assert gpu
        for event in gpu:
            launch = runtime[event["args"]["correlation"]]
            assert event["ts"] >= launch["ts"]
            if role(event) == "sync":
                continue
            # The arrow runs from the call's start to the GPU work's start, on its stream.
            start, finish = (
                arrows[("s", launch["args"]["correlation"])],
                arrows[("f", launch["args"]["correlation"])],
            )
            assert (start["ts"], start["tid"]) == (launch["ts"], int(launch["tid"]))
            assert (finish["ts"], finish["tid"]) == (event["ts"], event["args"]["stream"])
            op = ops[event["args"][external_key]]
            assert launch["args"][external_key] == op["args"]["External id"]
            assert str(op["tid"]) == str(launch["tid"])
            assert op["ts"] <= launch["ts"] and launch["ts"] + launch["dur"] <= op["ts"] + op["dur"]


@pytest.mark.parametrize("case", ["healthy", "every_fault", "streams_memory", "cpu"])
def test_steps_are_profiler_step_annotations_that_cover_their_work(tmp_path, case):
    _, truth, traces = generate(tmp_path, **SPECS[case])
    for trace in traces:
        steps = steps_of(trace)
        assert sorted(steps) == truth["steps"]
        windows = sorted(steps.values())
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(windows))  # in order, not overlapping
        runtime = {e["args"]["correlation"]: e for e in trace["traceEvents"] if role(e) == "runtime"}
        for event in gpu_events(trace):
            # The launching call lies in a step, and so does the work: each step ends with a sync.
            launch = runtime[event["args"]["correlation"]]
            step = next(w for w in windows if w[0] <= launch["ts"] <= w[1])
            assert step[0] <= event["ts"] and event["ts"] + event["dur"] <= step[1] + US_TOLERANCE
        ops = [e for e in trace["traceEvents"] if role(e) == "op"]
        assert all(any(w[0] <= e["ts"] <= w[1] for w in windows) for e in ops)


def test_gpu_user_annotations_span_what_their_range_launched(tmp_path):
    """Kineto draws each user range again on the streams of its launches (1 ns wider each side): a
    reader must not count them as GPU work, nor take them for the CPU's ProfilerStep#N."""
    _, truth, traces = generate(tmp_path, streams=2)
    for trace in traces:
        events = trace["traceEvents"]
        ranges = {e["args"]["External id"]: e for e in events if e.get("cat") == "user_annotation"}
        runtime = {e["args"]["correlation"]: e for e in events if role(e) == "runtime"}
        projections = [e for e in events if e.get("cat") == "gpu_user_annotation"]
        names = Counter((e["name"], e["tid"]) for e in projections)
        assert all(names[(f"ProfilerStep#{step}", 7)] == 1 for step in truth["steps"])
        assert names[("nccl:all_reduce", 20)] == 4 * len(truth["steps"])
        for projection in projections:
            cpu_range = ranges[projection["args"]["External id"]]
            assert cpu_range["name"] == projection["name"]
            window = (cpu_range["ts"], cpu_range["ts"] + cpu_range["dur"])
            work = [
                e
                for e in gpu_events(trace)
                if e["tid"] == projection["tid"]
                and window[0] <= runtime[e["args"]["correlation"]]["ts"] <= window[1]
                and (
                    cpu_range["name"].startswith("ProfilerStep#")
                    or runtime[e["args"]["correlation"]]["tid"] == cpu_range["tid"]
                )
            ]
            assert projection["ts"] == pytest.approx(min(e["ts"] for e in work) - 0.001, abs=5e-4)
            end = max(e["ts"] + e["dur"] for e in work) + 0.001
            assert projection["ts"] + projection["dur"] == pytest.approx(
                end, abs=5e-4
            )  # float µs near 2.7e12
        memsets = [e for e in gpu_events(trace) if e["cat"] == "gpu_memset"]
        assert len(memsets) == len(truth["steps"]) and {e["args"]["bytes"] for e in memsets} == {4 << 20}


def test_deterministic_by_seed(tmp_path):
    spec = {"inject": ("schedule.gc", "cluster.slow_rank"), "layout": "tensorboard"}
    first = write_kineto_traces(tmp_path / "a", KinetoSpec(seed=7, **spec))
    again = write_kineto_traces(tmp_path / "b", KinetoSpec(seed=7, **spec))
    other = write_kineto_traces(tmp_path / "c", KinetoSpec(seed=8, **spec))
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in again.iterdir())
    assert all((first / name).read_bytes() == (again / name).read_bytes() for name in files)
    assert (first / "ground_truth.json").read_bytes() != (other / "ground_truth.json").read_bytes()


def test_refuses_a_folder_with_files_and_bad_specs(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(InputError, match="not empty"):
        write_kineto_traces(tmp_path / "taken", KinetoSpec())
    for bad, message in (
        ({"device": "cpu", "inject": ("schedule.host_sync",)}, "needs device cuda"),
        ({"device": "cpu", "backend": "nccl"}, "nccl goes with device cuda"),
        ({"ranks": 1, "inject": ("cluster.slow_rank",)}, "at least 2 ranks"),
        ({"inject": ("communication.exposed",), "inject_ranks": (1,)}, "whole job: inject it on every rank"),
        ({"inject": ("schedule.nope",)}, "unknown fault"),
        ({"schema": "2019"}, "schema must be one of"),
    ):
        with pytest.raises(ValueError, match=message):
            KinetoSpec(**bad)
    assert KINETO_COLLATERAL.keys() == KINETO_FAULTS.keys()


# ---------------------------------------------------------------------------------------------
# Ground truth, measured again from the files


def expected(truth: dict[str, Any], check: str) -> dict[str, Any]:
    return next(entry for entry in truth["injected"] if entry["check"] == check)


def test_healthy_control_keeps_the_gpu_busy_and_hides_communication(tmp_path):
    _, truth, traces = generate(tmp_path)
    assert truth["healthy"] and truth["injected"] == []
    for rank, trace in enumerate(traces):
        gpu = gpu_events(trace)
        busy = merged([(e["ts"], e["ts"] + e["dur"]) for e in gpu])
        compute = merged([(e["ts"], e["ts"] + e["dur"]) for e in gpu if not e["name"].startswith("nccl")])
        for step, (start, end) in steps_of(trace).items():
            share = covered(busy, start, end) / (end - start)
            assert share > 0.9
            assert share == pytest.approx(
                truth["ranks"][str(rank)]["steps"][str(step)]["gpu_busy_share"], abs=1e-3
            )
            nccl = [e for e in within(gpu, (start, end)) if e["name"].startswith("ncclDevKernel_AllReduce")]
            assert len(nccl) == 4
            exposed = sum(e["dur"] - covered(compute, e["ts"], e["ts"] + e["dur"]) for e in nccl)
            assert exposed < 0.05 * (end - start)


def test_host_sync_leaves_the_gpu_idle_as_long_as_stated(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("schedule.host_sync",))
    entry = expected(truth, "schedule.host_sync")
    assert entry["collateral"] == ["overall.idle", "communication.exposed"]
    for rank, trace in enumerate(traces):
        events = trace["traceEvents"]
        for step, window in steps_of(trace).items():
            copies = [
                e
                for e in within(gpu_events(trace), window)
                if e["name"] == "Memcpy DtoH (Device -> Pageable)"
            ]
            syncs = [e for e in within(events, window) if e.get("name") == "cudaStreamSynchronize"]
            items = [e for e in within(events, window) if e.get("name") == "aten::item"]
            assert len(copies) == len(syncs) == len(items) == 4  # 3 injected + the loss logged at the end
            injected = copies[:3]
            gaps = sum(idle_until_resumed(trace, c["ts"] + c["dur"], c["ts"] + c["dur"]) for c in injected)
            assert gaps == pytest.approx(
                entry["expected"]["lost_us"][str(rank)][str(step)], abs=3 * US_TOLERANCE
            )
            assert gaps > 4_000  # host work of 1.5-3 ms after each sync
            for sync, copy in zip(syncs, copies, strict=True):  # the host waits until the copy is done
                assert sync["ts"] + sync["dur"] >= copy["ts"] + copy["dur"]


def test_gc_pauses_are_python_gc_events_in_every_other_step(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("schedule.gc",), steps=(5, 6, 7, 8))
    entry = expected(truth, "schedule.gc")
    assert entry["steps"] == [5, 7] and entry["expected"]["gc_events_written"]
    for rank, trace in enumerate(traces):
        collections = [e for e in trace["traceEvents"] if e.get("name") == "Python GC"]
        assert all(e["cat"] == "python_function" and set(e["args"]) == {"Ev Idx"} for e in collections)
        young = [e for e in collections if e["dur"] < 1_000]  # automatic generation-0 passes
        assert len(young) > 2 * len(truth["steps"]) and all(e["dur"] <= 80 for e in young)
        pauses = [e for e in collections if e["dur"] >= 1_000]
        for step, window in steps_of(trace).items():
            inside = within(pauses, window)
            if step not in entry["steps"]:
                assert inside == []
                continue
            (pause,) = inside
            assert 20_000 <= pause["dur"] <= 45_000
            idle = idle_until_resumed(trace, pause["ts"], pause["ts"] + pause["dur"])
            assert idle == pytest.approx(entry["expected"]["lost_us"][str(rank)][str(step)], abs=US_TOLERANCE)
            assert idle > 0.5 * pause["dur"]


def test_gc_without_events_leaves_only_the_gap(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("schedule.gc",), python_gc_events=False)
    assert not expected(truth, "schedule.gc")["expected"]["gc_events_written"]
    assert not any(e.get("cat") == "python_function" for t in traces for e in t["traceEvents"])
    assert not any("with_stack" in trace for trace in traces)
    assert min(expected(truth, "schedule.gc")["expected"]["lost_us_per_step"].values()) > 10_000


def test_slow_dataloader_idles_the_gpu_at_step_start(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("dataloader.slow",))
    entry = expected(truth, "dataloader.slow")
    name = "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__"
    for rank, trace in enumerate(traces):
        for step, window in steps_of(trace).items():
            (loader,) = [e for e in within(trace["traceEvents"], window) if e.get("name") == name]
            assert loader["cat"] == "user_annotation" and 25_000 <= loader["dur"] <= 45_000
            assert loader["ts"] - window[0] < 50  # at the start of the step
            idle = idle_until_resumed(trace, loader["ts"], loader["ts"] + loader["dur"])
            assert idle == pytest.approx(entry["expected"]["lost_us"][str(rank)][str(step)], abs=US_TOLERANCE)


def test_exposed_communication_matches_the_nccl_kernels(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("communication.exposed",))
    entry = expected(truth, "communication.exposed")
    for rank, trace in enumerate(traces):
        gpu = gpu_events(trace)
        compute = merged([(e["ts"], e["ts"] + e["dur"]) for e in gpu if not e["name"].startswith("nccl")])
        for step, window in steps_of(trace).items():
            nccl = [e for e in within(gpu, window) if e["cat"] == "kernel" and e["name"].startswith("nccl")]
            assert nccl and all(e["args"]["Collective name"] == "allreduce" for e in nccl)
            assert sum(e["args"]["In msg nelems"] for e in nccl) * 4 == 400 * (1 << 20)  # 4x 100 MB
            exposed = sum(e["dur"] - covered(compute, e["ts"], e["ts"] + e["dur"]) for e in nccl)
            assert exposed == pytest.approx(entry["expected"]["lost_us"][str(rank)][str(step)], abs=0.05)
            assert exposed > 0.15 * (window[1] - window[0])


def test_slow_rank_computes_longer_and_the_others_wait_in_the_all_reduce(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("cluster.slow_rank",), ranks=3)
    entry = expected(truth, "cluster.slow_rank")
    assert entry["ranks"] == [2] and set(entry["expected"]["lost_us"]) == {"0", "1"}

    def per_step(trace, nccl: bool) -> dict[int, float]:
        """Kernel time per step: the collectives', or the model's (not the optimizer's, not slowed)."""
        kernels = [
            e for e in gpu_events(trace) if e["cat"] == "kernel" and "multi_tensor_apply" not in e["name"]
        ]
        return {
            step: sum(e["dur"] for e in within(kernels, w) if e["name"].startswith("nccl") == nccl)
            for step, w in steps_of(trace).items()
        }

    compute = [per_step(t, False) for t in traces]
    collective = [per_step(t, True) for t in traces]
    for step in truth["steps"]:
        assert compute[2][step] > 1.2 * max(compute[0][step], compute[1][step])
        extra = entry["expected"]["slow_ranks_extra_compute_us"]["2"][str(step)]
        assert extra == pytest.approx(compute[2][step] * (1 - 1 / 1.35), rel=0.01)
        for rank in (0, 1):
            # The 4 all-reduces end within 3 µs on every rank: the longer kernels are the wait.
            waited = entry["expected"]["wait_in_collectives_us"][str(rank)][str(step)]
            assert collective[rank][step] - collective[2][step] == pytest.approx(waited, abs=2 * 4 * 3)
            assert waited > 1_000


def test_launch_overhead_spreads_tiny_kernels_apart(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("schedule.launch_overhead",))
    entry = expected(truth, "schedule.launch_overhead")
    assert entry["expected"]["visible"]
    for rank, trace in enumerate(traces):
        for step, window in steps_of(trace).items():
            tiny = [e for e in within(gpu_events(trace), window) if "CUDAFunctor_add" in e["name"]]
            assert len(tiny) == 1200 and max(e["dur"] for e in tiny) <= 4
            start, end = tiny[0]["ts"], tiny[-1]["ts"] + tiny[-1]["dur"]
            idle = end - start - covered(merged([(e["ts"], e["ts"] + e["dur"]) for e in tiny]), start, end)
            assert idle == pytest.approx(entry["expected"]["lost_us"][str(rank)][str(step)], abs=0.5)
            assert idle > 3 * sum(e["dur"] for e in tiny)  # host-bound: mostly gaps


def test_pageable_copies_block_the_host(tmp_path):
    _, truth, traces = generate(tmp_path, inject=("memory.pageable_memcpy",))
    entry = expected(truth, "memory.pageable_memcpy")
    runtime_of = {}
    for rank, trace in enumerate(traces):
        runtime_of = {e["args"]["correlation"]: e for e in trace["traceEvents"] if role(e) == "runtime"}
        for step, window in steps_of(trace).items():
            (copy,) = [e for e in within(gpu_events(trace), window) if e["name"].startswith("Memcpy HtoD")]
            assert copy["name"] == "Memcpy HtoD (Pageable -> Device)"
            call = runtime_of[copy["args"]["correlation"]]
            assert call["name"] == "cudaMemcpyAsync" and call["ts"] + call["dur"] >= copy["ts"] + copy["dur"]
            pinned_us = copy["args"]["bytes"] / 22.0 / 1000
            lost = entry["expected"]["lost_us"][str(rank)][str(step)]
            assert copy["dur"] - pinned_us == pytest.approx(lost, abs=0.01)


def test_cpu_runs_use_gloo_like_torch_records_it(tmp_path):
    _, truth, traces = generate(tmp_path, **SPECS["cpu"])
    for rank, trace in enumerate(traces):
        events = trace["traceEvents"]
        assert trace["deviceProperties"] == []
        assert trace["distributedInfo"]["backend"] == "gloo"
        assert trace["distributedInfo"]["pg_config"][0]["backend_config"] == "cpu:gloo,cuda:gloo"
        assert not any(role(e) in GPU_ROLES | {"runtime"} or e.get("cat") == "ac2g" for e in events)
        gloo = [e for e in events if e.get("name") == "gloo:all_reduce"]
        issued = [e for e in events if e.get("name") == "c10d::allreduce_"]
        assert len(gloo) == len(issued) == 4 * 3
        assert {e["tid"] for e in gloo}.isdisjoint({e["tid"] for e in issued})  # the gloo thread
        memory = [e for e in events if e.get("name") == "[memory]"]
        assert memory and all(e["args"]["Device Type"] == 0 and e["args"]["Device Id"] == -1 for e in memory)
        entry = expected(truth, "schedule.gc")
        for step in entry["steps"]:
            long_pauses = [e for e in events if e.get("name") == "Python GC" and e["dur"] >= 1_000]
            (pause,) = within(long_pauses, steps_of(trace)[step])
            assert pause["dur"] == pytest.approx(entry["expected"]["lost_us"][str(rank)][str(step)], abs=0.01)


# ---------------------------------------------------------------------------------------------
# Real traces: the required-field table holds on them, and tests/data/kineto keeps its ground truth


@pytest.mark.parametrize(
    "sample",
    [
        "kineto-small-gpu/critical_path__alexnet__benchmark_result_2869224_1695835535_trace.json.gz",
        "kineto-small-gpu/critical_path__cuda_event_sync__event_sync_trace.json.gz",
        "kineto-small-gpu/critical_path__simple_add__benchmark_result_493459_1694039959_trace.json.gz",
        "torch-cpu/single/cpu_worker0.step6.pt.trace.json",
        "torch-cpu/python_gc/cpuworker0.1795324142540088736.pt.trace.json",
    ],
)
def test_required_fields_hold_on_the_real_samples(sample):
    trace = load(corpus_path(CORPUS / sample))
    assert missing_fields(trace["traceEvents"], REQUIRED_ARGS) == []
    assert [p for p in flow_problems(trace["traceEvents"]) if "ac2g" not in p] == []  # ac2g: f without s


RECORDED_CASES = ("ddp_straggler", "host_bound", "slow_dataloader", "gc_pressure", "gc_pressure_nostack")


def recorded(case: str) -> list[dict[str, Any]]:
    return [load(path) for path in traces_in(RECORDED / case)]


@pytest.mark.parametrize("case", RECORDED_CASES)
def test_recorded_traces_hold_the_same_invariants(case):
    files = traces_in(RECORDED / case)
    assert files and all(p.stat().st_size < 400_000 and p.read_bytes()[:2] == b"\x1f\x8b" for p in files)
    for path in files:
        assert re.fullmatch(r"rank\d\.\d{19}\.pt\.trace\.json\.gz", path.name)
        trace = load(path)
        assert trace["deviceProperties"] == [] and "baseTimeNanoseconds" in trace
        assert missing_fields(trace["traceEvents"], {**REQUIRED_ARGS, **TORCH_2_13_ARGS}) == []
        assert flow_problems(trace["traceEvents"]) == []
        steps = steps_of(trace)
        assert sorted(steps) == [2, 3]  # schedule(wait=1, warmup=1, active=2)
        main = next(e["tid"] for e in trace["traceEvents"] if e.get("name") == "ProfilerStep#2")
        ops = [e for e in trace["traceEvents"] if e.get("cat") == "cpu_op" and e["tid"] == main]
        assert all(any(a <= e["ts"] <= b for a, b in steps.values()) for e in ops)


def test_recorded_ddp_straggler_waits_in_gloo_on_rank_0():
    """Rank 1 sleeps 50 ms before backward each step: rank 0's gloo all-reduce waits for it."""
    traces = {t["distributedInfo"]["rank"]: t for t in recorded("ddp_straggler")}
    assert sorted(traces) == [0, 1]
    mean_wait = {}
    for rank, trace in traces.items():
        info = trace["distributedInfo"]
        assert (info["backend"], info["world_size"]) == ("gloo", 2)
        gloo = [e for e in trace["traceEvents"] if e.get("name") == "gloo:all_reduce"]
        assert len(gloo) == 2 and gloo[0]["cat"] == "user_annotation"
        assert not any(e.get("name") == "record_param_comms" for e in trace["traceEvents"])
        mean_wait[rank] = sum(e["dur"] for e in gloo) / len(gloo)
    assert mean_wait[0] - mean_wait[1] > 40_000


def test_recorded_host_bound_loop_is_many_tiny_ops():
    (trace,) = recorded("host_bound")
    for window in steps_of(trace).values():
        ops = [e for e in within(trace["traceEvents"], window) if e.get("cat") == "cpu_op"]
        names = Counter(e["name"] for e in ops)
        assert names["aten::add_"] == names["aten::mul_"] == 600  # the scalars add aten::to and copies
        assert sum(e["dur"] for e in ops if e["name"] in ("aten::add_", "aten::mul_")) / 1200 < 50


def test_recorded_slow_dataloader_and_memory_events():
    (trace,) = recorded("slow_dataloader")
    assert trace["profile_memory"] == 1
    assert any(e.get("name") == "[memory]" for e in trace["traceEvents"])
    for window in steps_of(trace).values():
        (loader,) = [
            e
            for e in within(trace["traceEvents"], window)
            if e.get("name") == "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__"
        ]
        assert loader["dur"] >= 8 * 4_000  # 8 samples of a 4 ms __getitem__
        assert loader["dur"] > 0.8 * (window[1] - window[0])


def test_recorded_gc_events_need_with_stack():
    (with_stack,) = recorded("gc_pressure")
    (without,) = recorded("gc_pressure_nostack")
    assert with_stack["with_stack"] == 1 and "with_stack" not in without
    assert not any(e.get("cat") == "python_function" for e in without["traceEvents"])
    pauses = [e for e in with_stack["traceEvents"] if e.get("name") == "Python GC"]
    for window in steps_of(with_stack).values():
        assert max(e["dur"] for e in within(pauses, window)) > 100_000  # gc.collect() of 200k cycles
    for window in steps_of(without).values():  # the pause is there, only unexplained
        ops = merged(
            [(e["ts"], e["ts"] + e["dur"]) for e in without["traceEvents"] if e.get("cat") == "cpu_op"]
        )
        assert window[1] - window[0] - covered(ops, *window) > 100_000
