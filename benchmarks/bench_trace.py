"""Speed and peak memory of the trace_view.json reader on a generated trace of a chosen size.

    python benchmarks/bench_trace.py --size-mb 500 [--repeat 3] [--out DIR] [--compare-json]
    python benchmarks/bench_trace.py --goal [--anchor /work/main] [--big-mb 2000]

The trace mimics a torch_npu Level1 profile with call stacks: per step, host ops (a third with
call stacks), python functions, enqueue/dequeue, CANN API calls, device tasks, HCCL ops and plane
tasks, Overlap Analysis slices, counters (Acc PMU, QoS, HBM, …, AI Core Freq) and flows, in the
proportions of a real 2-rank profile; the Python process is named after its events, as torch_npu does.
Each measurement runs in a fresh child process, which reports its parse time, CPU time (its own and
its worker processes') and peak RSS.

`--goal` measures issue 19's goal 3 in one run: MB/s per core (file MB over CPU seconds) on the
bench trace and on a rank of `performance-advisor synth` (LLM workload), then 1 and 2 processes on
one big trace, each against the anchor checkout's reader (`--anchor`, e.g. the main branch), the
runs interleaved; the load average is printed beside each figure. The big trace is deleted afterwards
unless `--out` keeps it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST_PID, CANN_PID, HW_PID, HCCL_PID, OVERLAP_PID = 3096504, 3170820320, 3170820512, 3170820576, 3170820832
COUNTER_PIDS = {"AI Core Freq": 3170820544, "Acc PMU": 3170820768, "QoS": 3170820800, "HBM": 3170820640}
START_US = 1_736_408_883_000_000
ATEN = (
    "aten::empty",
    "aten::to",
    "aten::add",
    "aten::mul",
    "aten::mm",
    "aten::conv2d",
    "aten::relu",
    "aten::copy_",
)
CANN_NAMES = (
    "AscendCL@aclrtMemcpyAsync",
    "AscendCL@aclnnAdd",
    "AscendCL@aclopCompileAndExecute",
    "Runtime@rtKernelLaunch",
    "Node@launch",
    "AscendCL@aclrtSynchronizeStreamWithTimeout",
)
TASK_TYPES = ("AI_CORE", "AI_VECTOR_CORE", "MIX_AIC", "AI_CPU", "EVENT_WAIT_SQE", "PCIE_DMA_SQE")
SITE_PACKAGES = "/home/user/.local/lib/python3.9/site-packages"
HCCL_TASKS = ("Memcpy", "Reduce_Inline", "Notify_Wait", "Notify_Record")


def _ts(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000:03d}"


def _host(name: str, ns: int, dur: float, cat: str, args: dict, tid: int = HOST_PID) -> dict:
    """A framework event, keys in torch_npu's order for the Python process."""
    return {
        "ph": "X",
        "name": name,
        "pid": HOST_PID,
        "tid": tid,
        "ts": _ts(ns),
        "dur": dur,
        "cat": cat,
        "args": args,
    }


def _device(name: str, pid: int, tid: int, ns: int, dur: float, args: dict | None = None) -> dict:
    """A CANN, device, HCCL or Overlap Analysis event, keys in the device-side order."""
    event: dict = {"name": name, "pid": pid, "tid": tid, "ts": _ts(ns), "dur": dur}
    if args is not None:
        event["args"] = args
    event["ph"] = "X"
    return event


def _flow(ph: str, name: str, flow_id: int | str, cat: str, pid: int, tid: int, ns: int) -> dict:
    return {
        "ph": ph,
        "bp": "e",
        "name": name,
        "id": flow_id,
        "pid": pid,
        "tid": tid,
        "ts": _ts(ns),
        "cat": cat,
    }


def _counter(name: str, pid: int, ns: int, args: dict) -> dict:
    return {"name": name, "ts": _ts(ns), "pid": pid, "tid": 0, "args": args, "ph": "C"}


def _metadata(pid: int, name: str, threads: dict[int, str] | None = None) -> list[dict]:
    events = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}]
    for tid, thread in (threads or {}).items():
        events.append({"name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}, "ph": "M"})
    return events


def _stacks(rng: random.Random) -> list[str]:
    """A pool of call stacks: ~1.1 KB each, repeated across steps as real code paths are."""
    pool = []
    for i in range(40):
        frames = []
        for k in range(12):
            package = rng.choice(("nn", "utils", "optim"))
            function = rng.choice(("forward", "_call_impl", "step", "train"))
            line = rng.randint(10, 2000)
            frames.append(f"{SITE_PACKAGES}/torch/{package}/m{i}_{k}.py({line}): {function}")
        pool.append(";\r\n".join(frames))
    return pool


def _launches(rng: random.Random, step: int, t0: int, stacks: list[str]) -> tuple[list[dict], int]:
    """Host ops; every 4th launches a kernel: torch_to_npu and HostToDevice flows, CANN calls, tasks."""
    events: list[dict] = []
    t = t0 + 1_000
    for i in range(860):
        t += rng.randint(2_000, 30_000)
        args = {
            "Sequence number": -1,
            "Fwd thread id": 0,
            "Input Dims": "0;\r\n;\r\n",
            "Input type": "float;\r\nNone",
        }
        if i % 3 == 0:
            args["Call stack"] = rng.choice(stacks)
        events.append(_host(rng.choice(ATEN), t, round(rng.uniform(1, 200), 2), "cpu_op", args))
        if i % 4:
            continue
        device_ns = t + rng.randint(50_000, 400_000)
        link = 10_000_000 + step * 1000 + i
        npu_id = int(_ts(device_ns).replace(".", ""))
        events.append(_flow("s", "torch_to_npu", npu_id, "async_npu", HOST_PID, HOST_PID, t))
        for k in range(3):  # the API and the runtime/node calls under it
            cann_args = {"Thread Id": HOST_PID, "Mode": "ACL_RTS", "level": "acl", "id": "aclrtMemcpyAsync"}
            cann_args |= {"item_id": "0", "connection_id": link}
            dur = round(rng.uniform(5, 60), 2)
            events.append(_device(rng.choice(CANN_NAMES), CANN_PID, HOST_PID, t + 500 + k, dur, cann_args))
        events.append(
            _flow("s", f"HostToDevice{link}", str(link), "HostToDevice", CANN_PID, HOST_PID, t + 500)
        )
        for k in range(2):  # the kernel and a memcpy or event task beside it
            task_args = {"Model Id": 4294967295, "Task Type": rng.choice(TASK_TYPES), "Physic Stream Id": 2}
            task_args |= {"Task Id": i, "Batch Id": 0, "Subtask Id": 4294967295, "connection_id": link}
            dur = round(rng.uniform(1, 300), 5)
            events.append(_device(f"kernel_{i % 97}", HW_PID, 2, device_ns + k * 9_000, dur, task_args))
        events.append(_flow("f", f"HostToDevice{link}", str(link), "HostToDevice", HW_PID, 2, device_ns))
        events.append(_flow("f", "torch_to_npu", npu_id, "async_npu", HW_PID, 2, device_ns))
    return events, t


def step_events(rng: random.Random, step: int, t0: int, stacks: list[str]) -> tuple[list[dict], int]:
    """The events of one step starting at ns `t0`, and the step's end (ns)."""
    events, t = _launches(rng, step, t0, stacks)
    for i in range(1282):
        args = {"Python id": i, "Python parent id": max(i - 1, 0)}
        name = f"torch/nn/modules/module.py({i % 300}): _call_impl"
        events.append(_host(name, t0 + i * 90_000, round(rng.uniform(1, 900), 2), "python_function", args))
    for i in range(159):
        at, queue_id = t0 + i * 600_000, step * 1000 + i
        events.append(_host("Enqueue", at, 11.3, "enqueue", {"correlation_id": queue_id}))
        events.append(
            _host("Dequeue@aclnnAdd", at + 9_000, 30.1, "dequeue", {"correlation_id": queue_id}, HOST_PID + 1)
        )
        events.append(_flow("s", "enqueue_to_dequeue", queue_id, "async_task_queue", HOST_PID, HOST_PID, at))
        events.append(
            _flow("f", "enqueue_to_dequeue", queue_id, "async_task_queue", HOST_PID, HOST_PID + 1, at)
        )
    end = t + 2_000_000
    events.append(
        _host(f"ProfilerStep#{step}", t0, round((end - t0) / 1000, 3), "cpu_op", {"Sequence number": -1})
    )
    for op in range(4):
        at = t0 + op * (end - t0) // 4
        op_args = {"connection_id": op, "model id": 4294967295, "data_type": "FP32", "alg_type": "MESH-RING"}
        events.append(_device(f"hcom_allReduce__586_{op}_1", HCCL_PID, 0, at, 2000.5, op_args))
        for k in range(74):
            task = rng.choice(HCCL_TASKS)
            task_args = {"notify_id": "0", "duration estimated(us)": 1.2, "stream id": 4, "task id": 807}
            task_args |= {
                "context id": k,
                "task type": task,
                "src rank": 0,
                "dst rank": 1,
                "transport type": "SDMA",
            }
            task_args |= {
                "size(Byte)": 2064384,
                "data type": "FP32",
                "link type": "HCCS",
                "bandwidth(GB/s)": 15.03,
            }
            events.append(_device(task, HCCL_PID, 1 + k % 8, at + k * 20_000, 3.36, task_args))
    span = (end - t0) // 382
    for i in range(382):
        kind = ("Computing", "Communication", "Communication(Not Overlapped)", "Free")[i % 4]
        events.append(_device(kind, OVERLAP_PID, i % 4, t0 + i * span, round(span / 1000, 3)))
    for name, count, key in (("Acc PMU", 2752, "value"), ("QoS", 1405, "value"), ("HBM", 274, "Read(MB/s)")):
        for i in range(count):
            args = {key: rng.randint(0, 2000), "acc_id": i % 4}
            events.append(_counter(f"{name} {i % 4}", COUNTER_PIDS[name], t0 + i * 20_000, args))
    for i in range(2):
        events.append(
            _counter("AI Core Freq", COUNTER_PIDS["AI Core Freq"], t0 + i * 100_000_000, {"MHz": 1800})
        )
    return events, end


def write_trace(path: Path, size_mb: float, seed: int = 0, huge_string_mb: float = 0) -> dict[str, int]:
    """Write a trace of about `size_mb` MB; returns the number of steps and events written. With
    `huge_string_mb`, one host op in the middle has a call stack of that many MB (the reader skips it)."""
    rng = random.Random(seed)
    stacks = _stacks(rng)
    overlap_threads = dict(enumerate(("Computing", "Communication", "Communication(Not Overlapped)", "Free")))
    header = [
        *_metadata(CANN_PID, "CANN"),
        *_metadata(HW_PID, "Ascend Hardware", {2: "Stream 2"}),
        *_metadata(
            HCCL_PID, "HCCL", {0: "Group 0 Communication", **{k: f"Plane {k - 1}" for k in range(1, 9)}}
        ),
        *_metadata(OVERLAP_PID, "Overlap Analysis", overlap_threads),
        *(e for name, pid in COUNTER_PIDS.items() for e in _metadata(pid, name)),
    ]
    target = int(size_mb * 1e6)
    huge = int(huge_string_mb * 1e6)
    steps = events = 0
    t = START_US * 1000
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[")
        fh.write(json.dumps(header)[1:-1])
        written = fh.tell()
        while written < target:
            block, t = step_events(rng, steps + 1, t, stacks)
            if steps == 0:  # torch_npu names the Python process after its events
                block += _metadata(HOST_PID, "Python", {HOST_PID: f"Thread {HOST_PID}"})
            text = ", " + json.dumps(block)[1:-1]
            fh.write(text)
            written += len(text)
            if huge and written >= target // 2:
                head = json.dumps(_host("aten::huge", t, 1.0, "cpu_op", {}))[:-2]  # without "}}"
                fh.write(f', {head}"Call stack": "')
                for done in range(0, huge, 1 << 20):  # in pieces: a child forked later inherits our peak RSS
                    fh.write("f" * min(1 << 20, huge - done))
                fh.write('"}}')
                written += huge
                huge = 0
            steps += 1
            events += len(block)
        fh.write("]")
    return {"steps": steps, "events": events + len(header)}


_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    from pathlib import Path
    mode, path, processes = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    if mode == "reader":
        from advisor.formats.ascend_text.trace_view import read_trace
        def parse(p):
            return read_trace(p, processes=processes) if processes > 1 else read_trace(p)
    elif mode == "reader-python":
        from advisor.formats.ascend_text.trace_view import read_trace
        def parse(p):
            return read_trace(p, compiled=False)
    elif mode == "orjson":
        import orjson
        def parse(p):
            return orjson.loads(p.read_bytes())
    else:
        def parse(p):
            with p.open("rb") as fh:
                return json.load(fh)
    def cpu(who):
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start, thread_start = time.perf_counter(), cpu(resource.RUSAGE_SELF), time.thread_time()
    result = parse(path)
    seconds = time.perf_counter() - start
    main_cpu_s = time.thread_time() - thread_start
    cpu_s = cpu(resource.RUSAGE_SELF) - cpu_start + cpu(resource.RUSAGE_CHILDREN)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = {k: len(v) for k, v in result.items()} if isinstance(result, dict) else {"events": len(result)}
    print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "main_cpu_s": main_cpu_s, "base_kb": base,
                      "workers_kb": workers_kb, "load": os.getloadavg()[0], "rows": rows, "peak_kb": peak}))
    """
)


def measure(mode: str, path: Path, repeat: int, processes: int = 1, checkout: Path = ROOT) -> dict:
    """Best time and largest peak RSS of the reader `mode` of `checkout` over `repeat` fresh child
    processes (`processes` per read)."""
    return best_of([sys.executable, "-c", _CHILD, mode, str(path), str(processes)], repeat, checkout)


def best_of(command: list[str], repeat: int, cwd: Path = ROOT) -> dict:
    """Best time and largest peak RSS over `repeat` runs of `command` in `cwd` (whose `advisor` it
    imports), a child process that prints one JSON line with "seconds" and "peak_kb" last."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_kb": max(r["peak_kb"] for r in runs)}


def interleaved(runs: dict[str, tuple[Path, int]], path: Path, repeat: int) -> dict[str, dict]:
    """Each labelled (checkout, processes) reader run once per round, `repeat` rounds: the best time,
    the CPU time of that run and the largest peaks over the rounds."""
    results: dict[str, list[dict]] = {label: [] for label in runs}
    for _ in range(repeat):
        for label, (checkout, processes) in runs.items():
            results[label].append(measure("reader", path, 1, processes, checkout))
    best = {}
    for label, found in results.items():
        top = min(found, key=lambda r: r["seconds"])
        best[label] = {
            **top,
            "cpu_s": min(r["cpu_s"] for r in found),
            "main_cpu_s": min(r["main_cpu_s"] for r in found),
            "peak_kb": max(r["peak_kb"] for r in found),
            "workers_kb": max(r["workers_kb"] for r in found),
            "loads": [round(r["load"], 2) for r in found],
        }
    return best


def synth_rank(folder: Path, size_mb: float) -> Path:
    """The trace_view.json of one generated LLM rank of about `size_mb` MB (kept in `folder`)."""
    found = sorted(folder.rglob("trace_view.json")) if folder.exists() else []
    if not found:
        from advisor.synth import SynthSpec, write_synth_profile

        write_synth_profile(folder, SynthSpec(ranks=1, size_mb=size_mb, workload="llm"))
        found = sorted(folder.rglob("trace_view.json"))
    return found[0]


def goal(args: argparse.Namespace, folder: Path) -> None:
    """Issue 19 goal 3: MB/s per core on both traces, 1 -> 2 processes on the big one, vs the anchor."""
    anchor = args.anchor.resolve()
    print(f"anchor (before): {anchor}; this checkout (after): {ROOT}; load average now: {os.getloadavg()}")
    bench = folder / "trace_view.json"
    if not bench.exists():
        write_trace(bench, args.size_mb)
    traces = {"bench": bench, "synth rank": synth_rank(folder / "synth", args.size_mb)}
    print(
        f"{'trace':<11} {'MB':>6} {'reader':<7} {'best s':>7} {'MB/s':>6} {'CPU s':>6} {'MB/s/core':>9} "
        f"{'peak MB':>8} {'loads':<18}"
    )
    for name, path in traces.items():
        size = path.stat().st_size / 1e6
        found = interleaved({"before": (anchor, 1), "after": (ROOT, 1)}, path, args.repeat)
        for label, r in found.items():
            print(
                f"{name:<11} {size:>6.0f} {label:<7} {r['seconds']:>7.2f} {size / r['seconds']:>6.0f} "
                f"{r['cpu_s']:>6.2f} {size / r['cpu_s']:>9.0f} {r['peak_kb'] / 1024:>8.0f} {r['loads']}"
            )
        print(
            f"{name:<11} after/before: {found['before']['seconds'] / found['after']['seconds']:.2f}x wall, "
            f"{found['before']['cpu_s'] / found['after']['cpu_s']:.2f}x CPU"
        )
    big = folder / "big_trace_view.json"
    if not big.exists():
        print(f"{big}: {write_trace(big, args.big_mb)}")
    try:
        size = big.stat().st_size / 1e6
        runs = {
            "before, 1 process": (anchor, 1),
            "after, 1 process": (ROOT, 1),
            "after, 2 processes": (ROOT, 2),
        }
        found = interleaved(runs, big, args.repeat)
        print(
            f"{'big trace':<20} {'MB':>6} {'best s':>7} {'MB/s':>6} {'CPU s':>6} {'main thread CPU s':>17} "
            f"{'peak MB':>8} {'workers MB':>10} {'loads':<18}"
        )
        for label, r in found.items():
            print(
                f"{label:<20} {size:>6.0f} {r['seconds']:>7.2f} {size / r['seconds']:>6.0f} "
                f"{r['cpu_s']:>6.2f} {r['main_cpu_s']:>17.2f} {r['peak_kb'] / 1024:>8.0f} "
                f"{r['workers_kb'] / 1024:>10.0f} {r['loads']}"
            )
        one, two = found["after, 1 process"], found["after, 2 processes"]
        # The main thread reads its span, waits for the worker's, then builds the tables (the flows in a
        # thread beside it): on idle cores its CPU time is about the wall time, so the ratio below is the
        # speed-up that a loaded machine hides (a lower bound of the critical path when the worker is slower).
        print(
            f"1 -> 2 processes, main thread CPU (the critical path on idle cores): {one['main_cpu_s']:.2f} s "
            f"-> {two['main_cpu_s']:.2f} s = {one['main_cpu_s'] / two['main_cpu_s']:.2f}x (all CPU: "
            f"{two['cpu_s']:.2f} s)"
        )
        print(
            f"1 -> 2 processes: {one['seconds'] / two['seconds']:.2f}x wall (goal >= 1.8x) at load "
            f"{one['loads']} / {two['loads']} on {os.cpu_count()} cores; CPU {one['cpu_s']:.2f} s -> "
            f"{two['cpu_s']:.2f} s in all"
        )
    finally:
        if not args.out:
            big.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=200.0, help="size of the generated trace (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader; the best time is kept")
    parser.add_argument(
        "--out", type=Path, help="folder for the trace (kept and reused); default a temporary one"
    )
    parser.add_argument(
        "--trace", type=Path, help="measure this trace_view.json (real or synth) instead of generating one"
    )
    parser.add_argument(
        "--huge-string-mb", type=float, default=0, help="one event in the middle with a string this long"
    )
    parser.add_argument("--compare-json", action="store_true", help="also time json.load and orjson.loads")
    parser.add_argument(
        "--compare-python", action="store_true", help="also time the reader without its C scanner"
    )
    parser.add_argument("--processes", type=int, default=1, help="processes for one read (split trace)")
    parser.add_argument("--goal", action="store_true", help="issue 19 goal 3 against --anchor (see above)")
    parser.add_argument("--anchor", type=Path, default=Path("/work/main"), help="checkout read as 'before'")
    parser.add_argument("--big-mb", type=float, default=2000.0, help="size of the big trace for --goal")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.goal:
            goal(args, folder)
            return
        path = args.trace or folder / "trace_view.json"
        # A given or kept trace: generating 2 GB takes longer than reading it.
        if args.trace or (args.out and path.exists()):
            print(f"{path}: reused")
        else:
            info = write_trace(path, args.size_mb, huge_string_mb=args.huge_string_mb)
            print(f"{path}: {info['events']} events, {info['steps']} steps")
        size = path.stat().st_size
        print(f"{path}: {size / 1e6:.1f} MB")
        modes = ["reader", *(("reader-python",) if args.compare_python else ())]
        modes += ["orjson", "json"] if args.compare_json else []
        print(f"{'parser':<10} {'best s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'over imports MB':>16}")
        for mode in modes:
            result = measure(mode, path, args.repeat, args.processes)
            mb_s = size / 1e6 / result["seconds"]
            peak, base = result["peak_kb"] / 1024, result["base_kb"] / 1024
            print(f"{mode:<10} {result['seconds']:>8.2f} {mb_s:>8.1f} {peak:>12.0f} {peak - base:>16.0f}")
            if mode == "reader":
                reader_rows = result["rows"]
        print("reader rows:", reader_rows)


if __name__ == "__main__":
    main()
