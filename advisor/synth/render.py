"""One rank, one step: the trace events and table rows of a planned step placed on the clock.

Everything a file says about a step is derived here from the same numbers, so the files agree:
each kernel row is an `Ascend Hardware` task at the same ns linked by a `torch_to_npu` flow from the
host op that launched it; the Overlap Analysis slices are cut from the kernel and all-reduce
intervals; the step_trace_time.csv row is the sum of those slices.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import AI_CORE_NUM, AIV_NUM, CNN_ACTIVATION, NOMINAL_MHZ
from .plan import CALL_SPACING, MEMORY_FREES, REDUCING, CommOp, Kernel, Plane, StepPlan, StepTimes
from .pmu import draw
from .spec import rng, ts_ns, ts_text

_US = 1000
_MODEL_ID = 4294967295
_STREAM = 2  # compute stream; HCCL runs on its own
_HCCL_STREAM = 4
# Per CommOp kind: HCCL op type (op names are "<type>_<tag>_<n>_1", as the corpus' hcom_allReduce__586_0_1),
# the c10d op and HCCL call torch_npu's ProcessGroupHCCL records, the host thread that issues it (DDP's
# gradient hooks run in the autograd thread, Megatron's pipeline transfers in the main one), and the
# label of communication_matrix.json keys (torch_npu CommunicationParser.HCCL_PATTERN).
COMM_KINDS = {
    "allreduce": ("hcom_allReduce_", "c10d::allreduce_", "HcclAllreduce", "backward", "allreduce"),
    "reducescatter": (
        "hcom_reduceScatter_",
        "c10d::_reduce_scatter_base_",
        "HcclReduceScatter",
        "backward",
        "reducescatter",
    ),
    "allgather": ("hcom_allGather_", "c10d::_allgather_base_", "HcclAllgather", "main", "allgather"),
    "send": ("hcom_send_", "c10d::send", "HcclSend", "main", "send"),
    "receive": ("hcom_receive_", "c10d::recv_", "HcclRecv", "main", "receive"),
}


def double_hash(text: str) -> int:
    """The `@` suffix of communication op names: two 32-bit polynomial hashes (29, 131) concatenated."""
    low = high = 0
    for char in text:
        high = (high * 29 + ord(char)) & 0xFFFFFFFF
        low = (low * 131 + ord(char)) & 0xFFFFFFFF
    return (high << 32) | low


def _round(value: float) -> float:
    return round(value, 3)


@dataclass
class RankIds:
    """Process and thread ids of one rank's trace (shaped like the profiler's)."""

    rank: int
    device: int
    host_pid: int = 0
    main: int = 0
    backward: int = 0
    queue: int = 0
    gc: int = 0
    cann: int = 0
    hardware: int = 0
    freq: int = 0
    hccl: int = 0
    overlap: int = 0

    def __post_init__(self) -> None:
        self.host_pid = self.main = 3_096_504 + 2 * self.rank
        self.backward, self.queue, self.gc = self.main + 8571, self.main + 3198, self.main + 1
        base = 3_170_820_000 + 1000 * self.rank
        self.cann, self.hardware, self.freq = base + 320, base + 512, base + 544
        self.hccl, self.overlap = base + 576, base + 832


@dataclass
class StepOut:
    """What one rank wrote for one step."""

    events: list[dict[str, Any]]
    kernel_rows: list[list[Any]]
    detail_rows: list[list[Any]]
    memory_rows: list[list[Any]]
    op_memory_rows: list[list[Any]]
    communication: dict[str, Any]
    matrix: dict[str, Any]
    trace_row: dict[str, int]  # step_trace_time.csv values, ns
    comm_ops: list[dict[str, Any]] = field(default_factory=list)  # for the db export and ground truth


class RankRenderer:
    """Renders the steps of one rank in order; keeps the whole-profile aggregates and tallies."""

    def __init__(
        self,
        ids: RankIds,
        seed: int,
        group_hash: dict[int, str],
        group_members: dict[int, list[int]],
        op_tag: int,
        reserved_mb: float,
        gc_events: bool = True,
        realistic_pmu: bool = False,
        activation: tuple[str, str, str] = CNN_ACTIVATION,
    ) -> None:
        self.ids, self.seed = ids, seed
        self.gc_events = gc_events
        self.gc_pauses: list[dict[str, int]] = []  # step, start and duration (ns) of each GC pause
        self.spans: list[tuple[str, int, int]] = []  # the step's enclosing events: name, begin, end
        self.group_hash, self.group_members, self.op_tag = group_hash, group_members, op_tag
        self.reserved_mb = reserved_mb
        self.realistic_pmu, self.activation = realistic_pmu, activation
        self.task_id = 11_000 + 97 * ids.rank
        self.connection = 900
        self.sequence = 0
        self.mhz = NOMINAL_MHZ
        self.op_stats: dict[tuple[str, str], list[float]] = {}  # (type, core) -> count, total, min, max ns
        self.api_stats: dict[tuple[str, str], list[float]] = {}  # (level, name) -> count, total, min, max, sq
        self.tally: defaultdict[str, float] = defaultdict(float)
        self.freq_by_op: dict[str, list[int]] = {}  # kernel name -> [launches, sum of MHz below nominal]
        self.kinds: dict[str, set[str]] = defaultdict(set)
        self.launch_cid: dict[int, int] = {}  # id(kernel or all-reduce) -> connection id of its launch

    # -- small builders -------------------------------------------------------------------------

    def _cid(self) -> int:
        self.connection += 1
        return self.connection

    def _cpu_op(self, name: str, tid: int, start: int, dur: int, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ph": "X",
            "name": name,
            "pid": self.ids.host_pid,
            "tid": tid,
            "ts": ts_text(start),
            "dur": dur / 1000,
            "cat": "cpu_op",
            "args": args,
        }

    def _cann(
        self, name: str, tid: int, start: int, dur: int, mode: str, level: str, item: str, cid: int
    ) -> dict[str, Any]:
        api = name.split("@", 1)[1]
        key = (level, api)
        stats = self.api_stats.get(key)
        if stats is None:
            self.api_stats[key] = [1, dur, dur, dur, dur * dur]
        else:
            stats[0] += 1
            stats[1] += dur
            stats[2] = min(stats[2], dur)
            stats[3] = max(stats[3], dur)
            stats[4] += dur * dur
        return {
            "name": name,
            "pid": self.ids.cann,
            "tid": tid,
            "ts": ts_text(start),
            "dur": dur / 1000,
            "args": {
                "Thread Id": tid,
                "Mode": mode,
                "level": level,
                "id": api if level == "acl" else "0",
                "item_id": item,
                "connection_id": cid,
            },
            "ph": "X",
        }

    def _overlap(self, name: str, tid: int, start: int, dur: int) -> dict[str, Any]:
        return {
            "name": name,
            "pid": self.ids.overlap,
            "tid": tid,
            "ts": ts_text(start),
            "dur": dur / 1000,
            "ph": "X",
        }

    def freq_event(self, at: int, mhz: int, whole: bool = False) -> dict[str, Any]:
        # The profiler writes the closing sample's ts without decimals; readers must cope.
        ts = str(at // 1000) if whole else ts_text(at)
        return {
            "name": "AI Core Freq",
            "ts": ts,
            "pid": self.ids.freq,
            "tid": 0,
            "args": {"MHz": mhz},
            "ph": "C",
        }

    # -- the step -------------------------------------------------------------------------------

    def step(self, plan: StepPlan, times: StepTimes) -> StepOut:
        ids = self.ids
        stream = rng(self.seed, "render", ids.rank, plan.step)
        events: list[dict[str, Any]] = []
        if plan.mhz != self.mhz:
            events.append(self.freq_event(times.start, plan.mhz))
            self.mhz = plan.mhz
        # Device intervals: kernels back to back after their gaps, all-reduces over the block tails.
        items: list[tuple[int, Kernel | CommOp, int]] = []  # (start, what, slice index)
        spans: dict[int, tuple[int, int]] = {}  # id(CommOp) -> its end, and when its group's last member came
        overlap_events: list[dict[str, Any]] = []
        computing = free = overlapped = not_overlapped = bubble = 0
        for i, piece in enumerate(plan.slices):
            t = times.blocks[i]
            # Transfers before the block: the compute stream waits for them (not overlapped).
            for op, (start, end, began) in zip(piece.p2p, times.p2p[i] if times.p2p else (), strict=True):
                items.append((start, op, i))
                spans[id(op)] = (end, began)
                overlap_events.append(self._overlap("Communication", 1, start, end - start))
                overlap_events.append(self._overlap("Communication(Not Overlapped)", 2, start, end - start))
                not_overlapped += end - start
                bubble += end - start if op.kind == "receive" else 0
            run_start = t
            for kernel in piece.kernels:
                if kernel.gap:
                    if t > run_start:
                        overlap_events.append(self._overlap("Computing", 0, run_start, t - run_start))
                    overlap_events.append(self._overlap("Free", 3, t, kernel.gap))
                    free += kernel.gap
                    t += kernel.gap
                    run_start = t
                items.append((t, kernel, i))
                t += kernel.dur
                computing += kernel.dur
            if t > run_start:
                overlap_events.append(self._overlap("Computing", 0, run_start, t - run_start))
            busy_end = t
            comm = piece.comm
            if comm:
                start, end = t - comm.overlap, times.comm_end[i]
                items.append((start, comm, i))
                spans[id(comm)] = (end, times.comm_last[i])
                overlap_events.append(self._overlap("Communication", 1, start, end - start))
                overlapped += min(t, end) - start
                if end > t:
                    overlap_events.append(self._overlap("Communication(Not Overlapped)", 2, t, end - t))
                    not_overlapped += end - t
                busy_end = max(t, end)
            idle_end = times.device_end
            if i + 1 < len(plan.slices):
                following = times.p2p[i + 1] if times.p2p else ()
                idle_end = following[0][0] if following else times.blocks[i + 1]
            if idle_end > busy_end:
                overlap_events.append(self._overlap("Free", 3, busy_end, idle_end - busy_end))
                free += idle_end - busy_end
        items.sort(key=lambda item: item[0])
        launches = self._launch_points(plan, items, stream)
        out = StepOut(events, [], [], [], [], {}, {}, {})
        self._host(plan, times, items, spans, launches, stream, out)
        self._span_idle(overlap_events)
        self._device(plan, items, spans, stream, out)
        events.extend(overlap_events)
        out.trace_row = {
            "computing": computing,
            "not_overlapped": not_overlapped,
            "overlapped": overlapped,
            "communication": overlapped + not_overlapped,
            "free": free,
            "preparing": plan.preparing,
            "step": computing + not_overlapped + free,
            "bubble": bubble,  # the receive ops' time (torch_npu's Bubble column)
        }
        self._memory(plan, times, items, out)
        return out

    def _launch_points(self, plan: StepPlan, items: list, stream) -> list[int]:
        """When the host launches each device item: just ahead of it, never out of order."""
        out: list[int] = []
        previous = prev_start = 0
        for start, what, _ in items:
            if not out:
                launch = start - _first_lead(plan.preparing)
            elif isinstance(what, Kernel) and any(s.kind == "compile" for s in what.stalls):
                compiles = [p for s in what.stalls if s.kind == "compile" for p in s.parts]
                launch = start - (sum(compiles) + 30 * _US * len(compiles) + 60 * _US)
            else:
                launch = start - min(stream.randint(30 * _US, 90 * _US), (start - prev_start) // 2)
            launch = max(launch, previous + 1) if out else launch
            out.append(launch)
            previous, prev_start = launch, start
        return out

    def _host(
        self,
        plan: StepPlan,
        times: StepTimes,
        items: list,
        spans: dict[int, tuple[int, int]],
        launches: list[int],
        stream,
        out: StepOut,
    ) -> None:
        ids = self.ids
        events = out.events
        margin = plan.preparing // 40
        loader_end = times.start + plan.preparing - _first_lead(plan.preparing) - margin
        events.append(
            self._cpu_op(
                f"ProfilerStep#{plan.step}",
                ids.main,
                times.start,
                times.end - times.start,
                {"Sequence number": -1, "Fwd thread id": 0},
            )
        )
        loader = max(0, loader_end - times.start - margin)
        events.append(
            self._cpu_op(
                plan.dataloader,
                ids.main,
                times.start + margin,
                loader,
                {"Sequence number": -1, "Fwd thread id": 0},
            )
        )
        if loader >= 10_000 * _US:
            self.tally["dataloader.slow_events"] += 1
            self.tally["dataloader.max_ns"] = max(self.tally["dataloader.max_ns"], loader)
        n = len(items)
        pre = [min(20 * _US, (launches[j] - (launches[j - 1] if j else loader_end)) // 5) for j in range(n)]
        post = [
            min(40 * _US, ((launches[j + 1] if j + 1 < n else times.end) - launches[j]) // 5)
            for j in range(n)
        ]
        # Host ops: consecutive kernels of one op share it; an all-reduce is its own op.
        j = 0
        optimizer_span: list[int] = []
        span: list[Any] = []  # the open enclosing event: name, thread, begin, end
        previous_kernel_end = 0
        while j < n:
            start, what, _ = items[j]
            if isinstance(what, CommOp):
                self._comm_launch(plan, what, start, launches[j], pre[j], post[j], launches, j, out)
                # A wait on the host after the collective returns when the collective has ended.
                previous_kernel_end = max(previous_kernel_end, spans[id(what)][0])
                j += 1
                continue
            last = j
            while (
                last + 1 < n
                and isinstance(items[last + 1][1], Kernel)
                and items[last + 1][1].op == what.op
                and not items[last + 1][1].stalls
            ):
                last += 1
            op = plan.ops[what.op]
            if span and span[0] != op.span:
                self._close_span(span, out)
                span = []
            if what.stalls:
                self._stalls(
                    what,
                    plan.step,
                    previous_kernel_end,
                    launches[j] - pre[j],
                    launches[j - 1] + post[j - 1],
                    out,
                )
            tid = ids.backward if op.phase == "backward" else ids.main
            begin, finish = launches[j] - pre[j], launches[last] + post[last]
            if op.span:
                span = span or [op.span, tid, begin, finish]
                span[3] = finish
            self.sequence += 1
            device_total = sum(items[x][1].dur for x in range(j, last + 1))
            args: dict[str, Any] = {
                "Sequence number": self.sequence,
                "Fwd thread id": 0,
                "Input Dims": op.input_dims,
                "Call stack": op.stack,
            }
            events.append(self._cpu_op(op.outer, tid, begin, finish - begin, args))
            if op.inner:
                inner_end = launches[last] + post[last] * 3 // 5
                events.append(
                    self._cpu_op(
                        op.inner,
                        tid,
                        launches[j],
                        inner_end - launches[j],
                        {"Sequence number": self.sequence, "Fwd thread id": 0},
                    )
                )
            out.detail_rows.append(
                [
                    op.outer,
                    op.input_dims.replace("\r\n", "\n"),
                    op.stack.replace("\r\n", "\n"),
                    _round((finish - begin) / 1000 * 0.4),
                    _round((finish - begin) / 1000),
                    0,
                    _round(device_total / 1000),
                    0,
                    _round(device_total / 1000),
                ]
            )
            if op.phase == "optimizer":
                optimizer_span = [optimizer_span[0] if optimizer_span else begin, finish]
            for x in range(j, last + 1):
                self._kernel_launch(plan, items[x], launches, x, tid, stream, out)
                previous_kernel_end = items[x][0] + items[x][1].dur
            j = last + 1
        if span:
            self._close_span(span, out)
        if optimizer_span:
            events.append(
                self._cpu_op(
                    plan.optimizer,
                    ids.main,
                    optimizer_span[0],
                    optimizer_span[1] - optimizer_span[0],
                    {"Sequence number": -1, "Fwd thread id": 0},
                )
            )

    def _close_span(self, span: list[Any], out: StepOut) -> None:
        name, tid, begin, end = span
        out.events.append(
            self._cpu_op(name, tid, begin, end - begin, {"Sequence number": -1, "Fwd thread id": 0})
        )
        self.tally[f"span.{name}"] += 1
        self.spans.append((name, begin, end))

    def _span_idle(self, overlap_events: list[dict[str, Any]]) -> None:
        """Per enclosing event, the device idle (Overlap Analysis 'Free') inside it, as written."""
        free = [
            (ts_ns(e["ts"]), ts_ns(e["ts"]) + round(e["dur"] * 1000))
            for e in overlap_events
            if e["name"] == "Free"
        ]
        for name, begin, end in self.spans:
            self.tally[f"span.{name}.idle_ns"] += sum(max(0, min(b, end) - max(a, begin)) for a, b in free)
        self.spans.clear()

    def _kernel_launch(
        self, plan: StepPlan, item: tuple, launches: list[int], x: int, tid: int, stream, out: StepOut
    ) -> None:
        ids = self.ids
        start, kernel, _ = item
        launch = launches[x]
        window = (launches[x + 1] if x + 1 < len(launches) else start + kernel.dur) - launch
        t = launch + min(2 * _US, window // 10)
        compiles = [p for s in kernel.stalls if s.kind == "compile" for p in s.parts]
        for part in compiles:
            cid = self._cid()
            out.events.append(
                self._cann(
                    "AscendCL@aclopCompileAndExecute",
                    ids.queue,
                    t,
                    part + 20 * _US,
                    "ACL_OP",
                    "acl",
                    "0",
                    cid,
                )
            )
            out.events.append(
                self._cann(
                    "AscendCL@opCompile", ids.queue, t + 2 * _US, part, "ACL_OP", "acl", "0", self._cid()
                )
            )
            self.tally["compile.events"] += 1
            self.tally["compile.total_ns"] += part + 20 * _US
            t += part + 30 * _US
            window = max(0, start - t)
        acl_dur = max(1, min(stream.randint(8 * _US, 28 * _US), window * 3 // 10))
        tpl = kernel.tpl
        at = ts_text(start)
        if tpl.acl:  # graph kernels are launched by the executing graph, not by an aclnn API
            out.events.append(
                self._cann(f"AscendCL@{tpl.acl}", ids.queue, t, acl_dur, "ACL_OP", "acl", "0", self._cid())
            )
        cid = self._cid()
        launch_at = t + acl_dur // 4
        out.events.append(
            self._cann(
                "Node@launch", ids.queue, launch_at, max(1, acl_dur // 2), "launch", "node", tpl.name, cid
            )
        )
        self.tally["launch.events"] += 1
        if plan.sync_after_launch:
            sync_start = t + acl_dur + max(1, window // 20)
            sync_dur = max(1, min(25 * _US, window // 4))
            out.events.append(
                self._cann(
                    "AscendCL@aclrtSynchronizeStream",
                    ids.queue,
                    sync_start,
                    sync_dur,
                    "ACL_RTS",
                    "acl",
                    "0",
                    self._cid(),
                )
            )
            self.tally["sync.after_launch"] += 1
        self._flows(out, cid, launch_at, tid, launch, ids.hardware, _STREAM, at)
        self.launch_cid[id(kernel)] = cid

    def _comm_launch(
        self,
        plan: StepPlan,
        comm: CommOp,
        start: int,
        launch: int,
        pre: int,
        post: int,
        launches: list[int],
        j: int,
        out: StepOut,
    ) -> None:
        ids = self.ids
        op_type, c10d, call, thread, _ = COMM_KINDS[comm.kind]
        tid = ids.backward if thread == "backward" else ids.main
        out.events.append(
            self._cpu_op(
                c10d,
                tid,
                launch - pre,
                pre + post,
                {"Sequence number": -1, "Fwd thread id": 0},
            )
        )
        out.events.append(
            self._cpu_op(
                call,
                tid,
                launch,
                max(1, post * 3 // 5),
                {"Sequence number": -1, "Fwd thread id": 0},
            )
        )
        window = (launches[j + 1] if j + 1 < len(launches) else start + 10 * _US) - launch
        t = launch + min(2 * _US, window // 10)
        acl_dur = max(1, min(40 * _US, window * 3 // 10))
        out.events.append(
            self._cann(
                f"AscendCL@{op_type}",
                ids.queue,
                t,
                acl_dur,
                "HOST_HCCL",
                "acl",
                op_type,
                self._cid(),
            )
        )
        ffts = self._cid()
        ffts_at = t + acl_dur // 2
        out.events.append(
            self._cann(
                "Hccl@Launch_Ffts",
                ids.queue,
                ffts_at,
                max(1, acl_dur // 3),
                "master",
                "hccl",
                "Launch_Ffts",
                ffts,
            )
        )
        self._flows(out, ffts, ffts_at, tid, launch, ids.hccl, 0, ts_text(start))
        self.launch_cid[id(comm)] = ffts

    def _flows(
        self, out: StepOut, cid: int, cann_at: int, tid: int, launch: int, pid: int, device_tid: int, at: str
    ) -> None:
        """The two links to a device item: CANN launch -> task (HostToDevice) and host op -> task
        (torch_to_npu, whose id is the task's start in ns, i.e. its ts without the dot)."""
        ids = self.ids
        out.events += [
            {
                "name": f"HostToDevice{cid}",
                "ph": "s",
                "cat": "HostToDevice",
                "id": str(cid),
                "pid": ids.cann,
                "tid": ids.queue,
                "ts": ts_text(cann_at),
            },
            {
                "name": f"HostToDevice{cid}",
                "ph": "f",
                "id": str(cid),
                "ts": at,
                "cat": "HostToDevice",
                "pid": pid,
                "tid": device_tid,
                "bp": "e",
            },
            {
                "ph": "s",
                "bp": "e",
                "name": "torch_to_npu",
                "id": int(at.replace(".", "")),
                "pid": ids.host_pid,
                "tid": tid,
                "ts": ts_text(launch),
                "cat": "async_npu",
            },
            {
                "ph": "f",
                "bp": "e",
                "name": "torch_to_npu",
                "id": int(at.replace(".", "")),
                "pid": pid,
                "tid": device_tid,
                "ts": at,
                "cat": "async_npu",
            },
        ]

    def _stalls(
        self,
        kernel: Kernel,
        step: int,
        device_idle_from: int,
        host_free_until: int,
        host_busy_until: int,
        out: StepOut,
    ) -> None:
        """Host events of the stalls before `kernel`: item() or a mask's nonzero right after the device
        drains, the rest (GC, memory bursts) packed just before the launch that ends the stall."""
        ids = self.ids
        at = max(host_busy_until + _US, device_idle_from - 150 * _US)
        for stall in kernel.stalls:
            if stall.kind not in SYNCING_OPS:
                continue
            outer, inner = SYNCING_OPS[stall.kind]
            done = max(at + 10 * _US, device_idle_from + 20 * _US)
            out.events.append(
                self._cpu_op(outer, ids.main, at, done - at, {"Sequence number": -1, "Fwd thread id": 0})
            )
            out.events.append(
                self._cpu_op(
                    inner,
                    ids.main,
                    at + 2 * _US,
                    done - at - 4 * _US,
                    {"Sequence number": -1, "Fwd thread id": 0},
                )
            )
            out.events.append(
                self._cann(
                    "AscendCL@aclrtSynchronizeStream",
                    ids.main,
                    at + 4 * _US,
                    max(_US, device_idle_from + 10 * _US - at - 4 * _US),
                    "ACL_RTS",
                    "acl",
                    "0",
                    self._cid(),
                )
            )
            self.tally[f"{stall.kind}.syncs"] += 1
            self.tally[f"{stall.kind}.idle_ns"] += stall.gap
            at = done + 5 * _US
        end = host_free_until - 20 * _US
        for stall in reversed(kernel.stalls):
            if stall.kind == "gc":
                dur = stall.parts[0]
                if self.gc_events:  # without GC detection the pause is only a gap on the host
                    out.events.append(
                        {
                            "ph": "X",
                            "name": "GC",
                            "pid": ids.gc,
                            "tid": ids.main,
                            "ts": ts_text(end - dur),
                            "dur": dur / 1000,
                            "cat": "GC",
                            "args": {},
                        }
                    )
                    self.tally["gc.events"] += 1
                self.gc_pauses.append({"step": step, "start": end - dur, "dur": dur, "idle": stall.gap})
                self.tally["gc.total_ns"] += dur
                self.tally["gc.max_ns"] = max(self.tally["gc.max_ns"], dur)
                end -= dur + CALL_SPACING
            elif stall.kind == "memory":
                span = stall.span()
                t = end - span
                for i, part in enumerate(stall.parts):
                    api = "aclrtFree" if i < MEMORY_FREES else "aclMallocMemInner"
                    out.events.append(
                        self._cann(f"AscendCL@{api}", ids.main, t, part, "ACL_RTS", "acl", "0", self._cid())
                    )
                    self.tally[f"memory.{api}.count"] += 1
                    self.tally[f"memory.{api}.ns"] += part
                    t += part + CALL_SPACING
                end -= span + CALL_SPACING

    def _device(
        self, plan: StepPlan, items: list, spans: dict[int, tuple[int, int]], stream, out: StepOut
    ) -> None:
        ids = self.ids
        previous_end = previous_comm_end = None
        rows: list[tuple[int, list[Any]]] = []
        ema: list[int] = []  # start of the first and end of the last EMA kernel of the step
        for start, what, _ in items:
            at = ts_text(start)
            if isinstance(what, Kernel) and plan.ops[what.op].phase == "ema":
                ema = [ema[0] if ema else start, start + what.dur]
                self.tally["ema.kernels"] += 1
                self.tally["ema.busy_ns"] += what.dur
            if isinstance(what, Kernel):
                self.task_id = (self.task_id + 1) % 65_535
                tpl = what.tpl
                task_type = "AI_CORE" if tpl.core == "AI_VECTOR_CORE" else tpl.core
                out.events.append(
                    {
                        "name": tpl.name,
                        "pid": ids.hardware,
                        "tid": _STREAM,
                        "ts": at,
                        "dur": what.dur / 1000,
                        "args": {
                            "Model Id": _MODEL_ID,
                            "Task Type": task_type,
                            "Physic Stream Id": _STREAM,
                            "Task Id": self.task_id,
                            "Batch Id": 0,
                            "Subtask Id": _MODEL_ID,
                            "connection_id": self.launch_cid.pop(id(what)),
                        },
                        "ph": "X",
                    }
                )
                wait = 0 if previous_end is None else start - previous_end
                rows.append((start, self._kernel_row(plan, what, at, wait, stream)))
                previous_end = start + what.dur
                freq = self.freq_by_op.setdefault(tpl.name, [0, 0])
                freq[0] += 1
                freq[1] += NOMINAL_MHZ - self.mhz
                stats = self.op_stats.get((tpl.type, tpl.core))
                if stats is None:
                    self.op_stats[(tpl.type, tpl.core)] = [1, what.dur, what.dur, what.dur]
                else:
                    stats[0] += 1
                    stats[1] += what.dur
                    stats[2] = min(stats[2], what.dur)
                    stats[3] = max(stats[3], what.dur)
            else:
                end, last = spans[id(what)]
                op_type = COMM_KINDS[what.kind][0]
                name = f"{op_type}_{self.op_tag}_{what.index}_1"
                wait = 0 if previous_comm_end is None else start - previous_comm_end
                previous_comm_end = end
                rows.append(
                    (
                        start,
                        [
                            plan.step,
                            _MODEL_ID,
                            "N/A",
                            "N/A",
                            name,
                            op_type,
                            "N/A",
                            "HCCL",
                            at + "\t",
                            (end - start) / 1000,
                            _round(wait / 1000),
                            0,
                            *["N/A"] * 34,
                        ],
                    )
                )
                self._hccl(plan, what, name, start, end, last, out)
        if ema:
            self.tally["ema.wall_ns"] += ema[1] - ema[0]
        rows.sort(key=lambda row: row[0])
        out.kernel_rows = [row for _, row in rows]
        if out.comm_ops:
            self._communication_json(plan, out)

    def _kernel_row(self, plan: StepPlan, kernel: Kernel, at: str, wait: int, stream) -> list[Any]:
        tpl = kernel.tpl
        in_formats, out_formats = tpl.formats
        mix = tpl.core.startswith("MIX")
        head = [
            plan.step,
            _MODEL_ID,
            self.task_id,
            _STREAM,
            tpl.name,
            tpl.type,
            kernel.op_state,
            tpl.core,
            at + "\t",
            kernel.dur / 1000,
            _round(wait / 1000),
            kernel.block_dim,
            AIV_MIX if mix else 0,
            "YES" if tpl.core == "AI_CORE" else "NO",
            f'"{tpl.inputs}"',
            tpl.in_dtypes,
            in_formats,
            f'"{tpl.outputs}"',
            tpl.out_dtypes,
            out_formats,
            "0" if mix else "N/A",
        ]
        self.tally[f"op_state.{kernel.op_state}"] += 1
        if tpl.core == "AI_CPU":
            self.tally["aicpu.kernels"] += 1
            self.tally["aicpu.total_ns"] += kernel.dur
            self.tally["aicpu.max_ns"] = max(self.tally["aicpu.max_ns"], kernel.dur)
            self.kinds["aicpu.types"].add(tpl.type)
            return head + ["N/A"] * 25
        if block_dim_flagged(tpl.core, kernel.block_dim, AIV_MIX if mix else 0):
            self.tally["block_dim.kernels"] += 1
            self.tally["block_dim.total_ns"] += kernel.dur
            self.kinds["block_dim.types"].add(tpl.type)
        if kernel.bound == "none":
            self.tally["unbound.kernels"] += 1
            self.tally["unbound.max_ns"] = max(self.tally["unbound.max_ns"], kernel.dur)
        if kernel.bound == "mte2":
            self.tally["mte2_bound.kernels"] += 1
            self.tally["mte2_bound.total_ns"] += kernel.dur
            self.tally[f"mte2_bound.ns.{tpl.inputs}"] += kernel.dur
        if tpl.node:
            self.tally[f"graph.{tpl.node}.ns"] += kernel.dur
        jitter = stream.random()
        return head + pmu(kernel, self.mhz, jitter, draw(kernel, stream) if self.realistic_pmu else None)

    def _hccl(
        self, plan: StepPlan, comm: CommOp, name: str, start: int, end: int, last_start: int, out: StepOut
    ) -> None:
        ids = self.ids
        cid = self.launch_cid.pop(id(comm))
        out.events.append(
            {
                "name": name,
                "pid": ids.hccl,
                "tid": 0,
                "ts": ts_text(start),
                "dur": (end - start) / 1000,
                "args": {
                    "connection_id": cid,
                    "model id": _MODEL_ID,
                    "data_type": "FP32",
                    "alg_type": "NA" if comm.kind in ("send", "receive") else "MESH-RING",
                    "count": comm.bytes // 4,
                },
                "ph": "X",
            }
        )
        # A send only hands over: its receiver pulls the data (Memcpy/RDMASend on the receiving rank).
        transfer = 0 if comm.kind == "send" else comm.transfer
        transfer_start = end - 3 * _US - transfer
        members = self.group_members[comm.group]
        local = members.index(ids.rank)
        for p, plane in enumerate(comm.planes):
            tid = p + 1
            dst = members.index(plane.peer)
            base = {
                "stream id": _HCCL_STREAM,
                "task id": self.task_id,
                "src rank": local,
                "dst rank": dst,
                "model id": _MODEL_ID,
            }
            notify = start + _US + 280 * p
            out.events.append(
                _task(
                    "Notify_Record",
                    ids.hccl,
                    tid,
                    notify,
                    700,
                    p * 2,
                    base,
                    plane.transport,
                    0,
                    "INVALID_TYPE",
                    "INVALID_TYPE",
                )
            )
            waited = max(1, transfer_start - notify - 700)
            out.events.append(
                _task(
                    "Notify_Wait",
                    ids.hccl,
                    tid,
                    notify + 700,
                    waited,
                    p * 2 + 1,
                    base,
                    plane.transport,
                    0,
                    "INVALID_TYPE",
                    "INVALID_TYPE",
                )
            )
            if not transfer:
                continue
            move = "RDMASend" if plane.transport == "RDMA" else "Memcpy"
            self._tally_contention(comm, name, plane, move, plane.dur)
            out.events.append(
                _task(
                    move,
                    ids.hccl,
                    tid,
                    transfer_start,
                    plane.dur,
                    p * 2,
                    base,
                    plane.transport,
                    plane.size,
                    "FP32",
                    plane.link,
                )
            )
            reduced = plane.dur // 4 if comm.kind in REDUCING else 0
            if reduced:
                self._tally_contention(comm, name, plane, "Reduce_Inline", reduced)
                reduce_link = "ON_CHIP" if plane.transport == "RDMA" else plane.link
                out.events.append(
                    _task(
                        "Reduce_Inline",
                        ids.hccl,
                        tid,
                        transfer_start + plane.dur,
                        reduced,
                        p * 2 + 1,
                        base,
                        "SDMA",
                        plane.size,
                        "FP32",
                        reduce_link,
                    )
                )
            if plane.transport == "SDMA" and plane.size > 512:
                self.tally["alignment.inspected_ns"] += plane.dur + reduced
                if plane.size % 512:
                    self.tally["alignment.abnormal_ns"] += plane.dur + reduced
        elapse = end - start
        wait = max(0, transfer_start - start - 2 * _US)
        sync = min(wait, max(0, last_start - start))
        out.comm_ops.append(
            {
                "name": name,
                "kind": comm.kind,
                "group": comm.group,
                "start": start,
                "end": end,
                "elapse": elapse,
                "transit": transfer,
                "wait": wait,
                "sync": sync,
                "planes": comm.planes if transfer else [],
                "bytes": comm.bytes,
                "members": members,
                "local": local,
            }
        )
        if comm.kind == "allgather":
            self.tally["sync_bn.allgathers"] += 1
            self.kinds["sync_bn.allgather_bytes"].add(str(comm.bytes))
        if any(plane.transport == "SDMA" and plane.size > 512 and plane.size % 512 for plane in comm.planes):
            self.tally["alignment.ops"] += 1

    def _communication_json(self, plan: StepPlan, out: StepOut) -> None:
        """communication.json and communication_matrix.json of the step: all-reduces under
        "collective", sends and receives under "p2p", each section with its own Total Op Info (as
        torch_npu's CommunicationParser splits them by op name)."""
        sections: dict[str, list[dict[str, Any]]] = {"p2p": [], "collective": []}
        for op in out.comm_ops:
            sections["p2p" if op["kind"] in ("send", "receive") else "collective"].append(op)
        communication: dict[str, Any] = {}
        matrices: dict[str, Any] = {}
        for section, ops in sections.items():
            communication[section] = self._section(ops)
            by_group: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
            for op in ops:
                by_group[(op["group"], COMM_KINDS[op["kind"]][4])].append(op)
            matrices[section] = {}
            for (group, label), grouped in by_group.items():
                matrices[section].update(_matrix(grouped, self.group_hash[group], label))
        sdma_total = sum(
            op["Communication Bandwidth Info"]["SDMA"]["Transit Size(MB)"]
            for key, op in communication["collective"].items()
            if key != "Total Op Info"
        )
        self.tally["packet.sdma_ops"] += 1 if sdma_total else 0
        self.tally["packet.small_sdma_ops"] += 1 if 0 < sdma_total < 16 else 0
        out.communication = {f"step{plan.step}": communication}
        out.matrix = {f"step{plan.step}": matrices}

    def _section(self, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """One section's ops keyed `name@group hash`, plus their Total Op Info (none when empty)."""
        entries: dict[str, Any] = {}
        total_time = dict.fromkeys(("elapse", "transit", "wait", "sync"), 0)
        total_bw: dict[str, list] = {t: [0, 0, {}] for t in _TRANSPORTS}
        for op in ops:
            key = f"{op['name']}@{self.group_hash[op['group']]}"
            bandwidth = _bandwidth(op["planes"])
            entries[key] = {
                "Communication Time Info": _time_info(op, with_start=True),
                "Communication Bandwidth Info": bandwidth,
            }
            for name in total_time:
                total_time[name] += op[name]
            for transport, info in bandwidth.items():
                total_bw[transport][0] += info["Transit Size(MB)"]
                total_bw[transport][1] += info["Transit Time(ms)"]
                for size, (count, ms) in info["Size Distribution"].items():
                    entry = total_bw[transport][2].setdefault(size, [0, 0.0])
                    entry[0] += count
                    entry[1] += ms
            self._tally_comm(op, bandwidth)
        if ops:
            entries["Total Op Info"] = {
                "Communication Time Info": _time_info(total_time, with_start=False),
                "Communication Bandwidth Info": {
                    t: {"Transit Time(ms)": v[1], "Transit Size(MB)": v[0], "Size Distribution": v[2]}
                    for t, v in total_bw.items()
                },
            }
        return entries

    def _tally_comm(self, op: dict[str, Any], bandwidth: dict[str, Any]) -> None:
        tally = self.tally
        sdma = bandwidth["SDMA"]
        if sdma["Transit Size(MB)"]:
            tally["packet.sdma_ops"] += 1
            tally["packet.small_sdma_ops"] += sdma["Transit Size(MB)"] < 16
            tally["sdma.mb"] += sdma["Transit Size(MB)"]
            tally["sdma.ms"] += sdma["Transit Time(ms)"]
        rdma = bandwidth["RDMA"]
        if rdma["Transit Size(MB)"]:
            tally["rdma.mb"] += rdma["Transit Size(MB)"]
            tally["rdma.ms"] += rdma["Transit Time(ms)"]
            tally["rdma.max_transit_ms"] = max(tally["rdma.max_transit_ms"], rdma["Transit Time(ms)"])
        for plane in op["planes"]:
            tally[f"link.{plane.link}.{plane.peer}.bytes"] += plane.size
            tally[f"link.{plane.link}.{plane.peer}.ns"] += plane.dur
        tally["comm.max_elapse_ns"] = max(tally["comm.max_elapse_ns"], op["elapse"])

    def _tally_contention(self, comm: CommOp, name: str, plane: Plane, task_type: str, dur: int) -> None:
        """The transfers the contention fault slows: the SDMA planes' tasks (a Memcpy, and the
        Reduce_Inline after it in a reduction) of at least 1 MiB."""
        if comm.contended is None or plane.transport != "SDMA" or plane.size < CONTENTION_MIN_BYTES:
            return
        key = f"contention.{task_type}.{'contended' if comm.contended else 'alone'}"
        self.tally[f"{key}.transfers"] += 1
        self.tally[f"{key}.bytes"] += plane.size
        self.tally[f"{key}.ns"] += dur
        self.kinds[f"{key}.ops"].add(name)

    def _memory(self, plan: StepPlan, times: StepTimes, items: list, out: StepOut) -> None:
        """memory_record / operator_memory rows: activations allocated in forward, freed in backward."""
        device = f"NPU:{self.ids.device}"
        base_mb = self.reserved_mb * 0.55
        out.memory_rows.append(
            ["APP", ts_text(times.start) + "\t", "", round(self.reserved_mb + 312.0, 4), "", "", device]
        )
        alloc_op, alloc_type, free_type = self.activation
        convs = [(start, k) for start, k, _ in items if _kernel_in(k, plan, alloc_type, "forward")]
        grads = [(start, k) for start, k, _ in items if _kernel_in(k, plan, free_type, "backward")]
        allocated = base_mb
        step_alloc = (self.reserved_mb * 0.9 - base_mb) / max(1, len(convs))
        for j, (start, _) in enumerate(convs):
            allocated += step_alloc
            at = ts_text(start - 30 * _US) + "\t"
            for component in ("PTA", "PTA+GE"):
                out.memory_rows.append(
                    [component, at, allocated, self.reserved_mb, allocated, 897357296, device]
                )
            release = grads[len(grads) - 1 - j][0] if len(grads) > j else times.device_end
            out.op_memory_rows.append(
                [
                    alloc_op,
                    round(step_alloc * 1024, 1),
                    at,
                    ts_text(release) + "\t",
                    ts_text(release) + "\t",
                    ts_text(release - start + 30 * _US) + "\t",
                    ts_text(release - start + 30 * _US) + "\t",
                    allocated,
                    self.reserved_mb,
                    allocated,
                    allocated - step_alloc,
                    self.reserved_mb,
                    allocated - step_alloc,
                    897357296,
                    device,
                ]
            )
        for start, _ in grads:
            allocated -= step_alloc
            for component in ("PTA", "PTA+GE"):
                out.memory_rows.append(
                    [
                        component,
                        ts_text(start + 5 * _US) + "\t",
                        allocated,
                        self.reserved_mb,
                        allocated,
                        897357296,
                        device,
                    ]
                )


_TRANSPORTS = ("RDMA", "HCCS", "PCIE", "SDMA", "SIO")
CONTENTION_MIN_BYTES = 1 << 20  # below this a transfer's speed is latency, not bandwidth
AIV_MIX = AIV_NUM


# Framework ops that synchronise the stream inside (outer, inner): item() reads a scalar; a boolean
# mask's nonzero reads the count of its result (SyncBatchNorm masks the gathered counts).
SYNCING_OPS = {
    "host_sync": ("aten::item", "aten::_local_scalar_dense"),
    "mask": ("aten::index", "aten::nonzero"),
}


def _kernel_in(what: Kernel | CommOp, plan: StepPlan, kind: str, phase: str) -> bool:
    return isinstance(what, Kernel) and what.tpl.type == kind and plan.ops[what.op].phase == phase


def _first_lead(preparing: int) -> int:
    """How long before the step's first kernel the host launches it (the data loader ends before)."""
    return min(100 * _US, preparing // 4)


def block_dim_flagged(core: str, block_dim: int, mix_block_dim: int) -> bool:
    """The reference rule: a block dim that leaves cores idle (AI_CORE vs cube cores, vector vs AIV)."""
    if core == "AI_CORE":
        return block_dim % AI_CORE_NUM != 0
    if core == "AI_VECTOR_CORE":
        return block_dim % AIV_NUM != 0
    if core == "MIX_AIC":  # judged against the vector cores, unless the mixed part fills them
        return block_dim % AIV_NUM != 0 and mix_block_dim % AIV_NUM != 0
    return False


def _task(
    name: str,
    pid: int,
    tid: int,
    start: int,
    dur: int,
    context: int,
    base: dict[str, Any],
    transport: str,
    size: int,
    dtype: str,
    link: str,
) -> dict[str, Any]:
    args = {
        "notify_id": str(4294967296 * base["dst rank"] + 60 + context),
        "duration estimated(us)": dur / 1000,
        "stream id": base["stream id"],
        "task id": base["task id"],
        "context id": context,
        "task type": name,
        "src rank": base["src rank"],
        "dst rank": base["dst rank"],
        "transport type": transport,
        "size(Byte)": size,
        "data type": dtype,
        "link type": link,
        "bandwidth(GB/s)": size / dur if dur and size else 0.0,
        "model id": base["model id"],
    }
    return {
        "name": name,
        "pid": pid,
        "tid": tid,
        "ts": ts_text(start),
        "dur": dur / 1000,
        "args": args,
        "ph": "X",
    }


def _time_info(op: dict[str, Any], with_start: bool) -> dict[str, Any]:
    wait, transit, sync = op["wait"], op["transit"], op["sync"]
    info: dict[str, Any] = {"Start Timestamp(us)": op["start"] / 1000} if with_start else {}
    info.update(
        {
            "Elapse Time(ms)": op["elapse"] / 1e6,
            "Transit Time(ms)": transit / 1e6,
            "Wait Time(ms)": wait / 1e6,
            "Synchronization Time(ms)": sync / 1e6,
            "Idle Time(ms)": (op["elapse"] - transit - wait) / 1e6,
            "Wait Time Ratio": round(wait / (wait + transit), 4) if wait + transit else 0,
            "Synchronization Time Ratio": round(sync / (sync + transit), 4) if sync + transit else 0,
        }
    )
    return info


def _bandwidth(planes: list[Plane]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for transport in _TRANSPORTS:
        links = {"RDMA": ("ROCE",), "SDMA": ("HCCS", "PCIE", "SIO")}.get(transport, (transport,))
        chosen = [p for p in planes if p.link in links]
        size = sum(p.size for p in chosen) / 1e6
        time = sum(p.dur for p in chosen) / 1e6
        distribution: dict[str, list] = {}
        if transport != "SDMA":
            for p in chosen:
                entry = distribution.setdefault(str(p.size / 1e6), [0, 0.0])
                entry[0] += 1
                entry[1] += p.dur / 1e6
        info[transport] = {
            "Transit Size(MB)": size,
            "Transit Time(ms)": time,
            "Bandwidth(GB/s)": round(size / time, 4) if time else 0,
            "Large Packet Ratio": 0.0 if chosen else 0,
            "Size Distribution": distribution,
        }
    return info


def _matrix(ops: list[dict[str, Any]], group_hash: str, label: str) -> dict[str, Any]:
    """communication_matrix.json entries of one group: top/middle/bottom ops by time, and the total."""
    ranked = sorted(ops, key=lambda op: -op["elapse"])
    picks = {"top1": ranked[0], "middle": ranked[len(ranked) // 2]}
    for n in (1, 2, 3):
        picks[f"bottom{n}"] = ranked[max(0, len(ranked) - n)]
    out: dict[str, Any] = {}
    totals: dict[str, list] = {}
    for pick, op in picks.items():
        out[f"{label}-{pick}@{group_hash}"] = _links(op, with_name=True)
    for op in ops:
        for link, info in _links(op, with_name=False).items():
            entry = totals.setdefault(link, [info["Transport Type"], 0.0, 0.0])
            entry[1] += info["Transit Size(MB)"]
            entry[2] += info["Transit Time(ms)"]
    out[f"{label}-total@{group_hash}"] = {
        link: {
            "Transport Type": t,
            "Transit Size(MB)": size,
            "Transit Time(ms)": ms,
            "Bandwidth(GB/s)": round(size / ms, 4) if ms else 0,
        }
        for link, (t, size, ms) in totals.items()
    }
    return out


def _links(op: dict[str, Any], with_name: bool) -> dict[str, Any]:
    local = op["local"]
    own = op["bytes"] / max(1, len(op["members"])) / 1e6
    own_ms = own / 400.0  # on-chip copy at ~400 GB/s
    links: dict[str, Any] = {
        f"{local}-{local}": {
            "Transport Type": "LOCAL",
            "Transit Size(MB)": own,
            "Transit Time(ms)": own_ms,
            "Bandwidth(GB/s)": round(own / own_ms, 4) if own_ms else 0,
        }
    }
    for plane in op["planes"]:
        size, ms = plane.size / 1e6, plane.dur / 1e6
        links[f"{local}-{op['members'].index(plane.peer)}"] = {
            "Transport Type": "RDMA" if plane.transport == "RDMA" else plane.link,
            "Transit Size(MB)": size,
            "Transit Time(ms)": ms,
            "Bandwidth(GB/s)": round(size / ms, 4) if ms else 0,
        }
    if with_name:
        for info in links.values():
            info["Op Name"] = op["name"]
    return links


def pmu(
    kernel: Kernel, mhz: int, jitter: float, drawn: tuple[list[float], list[float]] | None = None
) -> list[Any]:
    """The 25 PMU columns: one unit dominates (ratio > 0.8: mac, mte2 for a cube kernel; vec, mte3 for a
    vector one) unless the kernel is 'bound' to none, or the cube and vector ratios `drawn` (pmu.draw)."""
    tpl = kernel.tpl
    dur = kernel.dur / 1000
    busy = dur * (0.93 + 0.05 * jitter)
    cube = tpl.core in ("AI_CORE", "MIX_AIC", "MIX_AIV")
    vector = tpl.core != "AI_CORE"
    high = 0.82 + 0.1 * jitter
    none = kernel.bound == "none"
    cols: list[Any] = []
    if cube and tpl.core != "MIX_AIV":
        mac = 0.55 if none else (high if kernel.bound == "mac" else 0.2)
        ratios = (
            drawn[0]
            if drawn
            else [
                mac,
                0.08 + 0.1 * jitter,
                0.45 if none else 0.3 + 0.2 * jitter,
                0.58 if none else (high if kernel.bound == "mte2" else 0.4 + 0.3 * jitter),
                0.1 + 0.1 * jitter,
            ]
        )
        cols += [round(busy, 3), int(busy * mhz * kernel.block_dim)]
        for ratio in ratios:
            cols += [round(ratio * busy, 3), round(ratio, 3)]
        cols.append(round(0.001 + 0.01 * jitter, 3))
    else:
        cols += [0.0, 0] + [0.0] * 10 + [0.0]
    if vector:
        vec = 0.5 if none else (high if kernel.bound == "vec" else 0.3 + 0.2 * jitter)
        mte3 = 0.45 if none else (high if kernel.bound == "mte3" else 0.1 + 0.3 * jitter)
        ratios = drawn[1] if drawn else [vec, 0.05 + 0.1 * jitter, 0.3 + 0.3 * jitter, mte3]
        cols += [round(busy, 3), int(busy * mhz * kernel.block_dim)]
        for ratio in ratios:
            cols += [round(ratio * busy, 3), round(ratio, 3)]
        cols.append(round(0.01 + 0.03 * jitter, 3))
    else:
        cols += [0.0, 0] + [0.0] * 8 + [0.0]
    cols.append(round((cols[3] if cube and tpl.core != "MIX_AIV" else 0.0) * 100 * 0.95, 3))
    return cols


@dataclass
class RankResult:
    rank: int
    folder: Path | None  # None when only measured
    trace_bytes: int
    renderer: RankRenderer
    trace_rows: dict[int, dict[str, int]]  # step -> step_trace_time.csv values (ns)
    comm: list[dict[str, Any]]  # per all-reduce: step, name, elapse (ns)
