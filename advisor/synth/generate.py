"""Writing a whole profile: one `*_ascend_pt` folder per rank, generated rank by rank.

Pass 1 places every (rank, step) on the common clock (cheap numbers only); pass 2 renders each rank's
steps in order and streams them to its files, so memory does not grow with the profile size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from .db_export import DbWriter
from .faults import HBM_CAPACITY_MB, Injection
from .graph_dump import write_graph_dump
from .ground_truth import build_ground_truth, workload_truth
from .level0 import prune
from .model import AI_CORE_NUM, AIV_NUM, CNN_ACTIVATION, NOMINAL_MHZ, attention_graph
from .plan import DemoPlanner, StepTimes, Topology
from .planner import SynthPlanner, schedule
from .render import RankIds, RankRenderer, RankResult, double_hash
from .spec import DemoSpec, SynthSpec, plan_demo, rng, timestamp17, ts_text
from .text_export import RankFiles, TraceWriter, write_json
from .validate import check_faults

BASE_TIME_NS = 1_736_408_883_686_740_000  # 2025-01-09 07:48 UTC, like the corpus recordings
DEMO_ENV = {
    "ASCEND_GLOBAL_LOG_LEVEL": "3",
    "HCCL_RDMA_TC": "",
    "HCCL_RDMA_SL": "",
    "ACLNN_CACHE_LIMIT": "",
    "HOST_CACHE_CAPACITY": "",
    "ASCEND_ENHANCE_ENABLE": "1",
    "PYTORCH_NPU_ALLOC_CONF": "",
    "ASCEND_LAUNCH_BLOCKING": "0",
}


@dataclass
class Run:
    """Everything the writers need besides the planner."""

    planner: DemoPlanner | SynthPlanner
    ranks: int
    steps: tuple[int, ...]
    seed: int
    host: str
    topology: Topology
    env: dict[str, str]
    start_ns: list[int]
    distributed: bool
    reserved_mb: float = 38_912.0
    export: str = "text"
    gc_events: bool = True  # GC detection on: the 'Python GC' process and GC_RECORD exist
    realistic_pmu: bool = False
    level0: bool = False
    activation: tuple[str, str, str] = CNN_ACTIVATION
    group_ids: dict[int, str] = field(init=False)

    def __post_init__(self) -> None:
        groups = sorted({g for r in range(self.ranks) for g in self.topology.groups(r)})
        self.group_ids = {g: f"10.20.0.1%enp189s0f0_60000_{g}_1736408883686740" for g in groups}


def prepare_dest(dest: str | Path) -> Path:
    root = Path(dest).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        raise InputError(
            f"{root}: already exists and is not empty; profiles are written only into a new or empty folder"
        )
    root.mkdir(parents=True, exist_ok=True)
    return root


def _metadata(
    process: tuple[int, str, int, str], threads: Sequence[tuple[int, str]] = ()
) -> list[dict[str, Any]]:
    pid, name, sort_index, labels = process
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}},
        {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": labels}},
        {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": sort_index}},
    ]
    for tid, thread in threads:
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}})
        events.append(
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}}
        )
    return events


def header_events(ids: RankIds, planes: int, group: int, gc: bool = True) -> list[dict[str, Any]]:
    # Without GC detection the profiler writes no 'Python GC' process (the corpus has none).
    gc_process = _metadata((ids.gc, "Python GC", 1, "CPU"), [(ids.main, f"Thread {ids.main}")]) if gc else []
    return [
        *_metadata(
            (ids.host_pid, "Python", 0, "CPU"),
            [(ids.main, f"Thread {ids.main}"), (ids.backward, f"Thread {ids.backward}")],
        ),
        *gc_process,
        *_metadata(
            (ids.cann, "CANN", 7, "CPU"),
            [(ids.main, f"Thread {ids.main}"), (ids.queue, f"Thread {ids.queue}")],
        ),
        *_metadata((ids.hardware, "Ascend Hardware", 13, "NPU"), [(2, "Stream 2")]),
        *_metadata((ids.freq, "AI Core Freq", 14, "NPU")),
        *_metadata(
            (ids.hccl, "HCCL", 15, "NPU"),
            [(0, f"Group {group} Communication"), *((p + 1, f"Plane {p}") for p in range(planes))],
        ),
        *_metadata(
            (ids.overlap, "Overlap Analysis", 23, "NPU"),
            [(0, "Computing"), (1, "Communication"), (2, "Communication(Not Overlapped)"), (3, "Free")],
        ),
    ]


def _profiler_info(
    rank: int, start_ns: int, end_ns: int, export: str | list[str], level0: bool, gc_events: bool
) -> dict[str, Any]:
    # Same shape as a real torch_npu profiler_info_{N}.json (no version keys: real files carry none).
    return {
        "config": {
            "common_config": {
                "activities": ["ProfilerActivity.CPU", "ProfilerActivity.NPU"],
                "schedule": {"wait": 0, "active": 3, "warmup": 1, "repeat": 1, "skip_first": 10},
                "record_shapes": True,
                "profile_memory": True,
                "with_stack": True,
                "with_flops": False,
                "with_modules": False,
            },
            "experimental_config": {
                # Level0's default AI Core metrics are none (torch_npu _ExperimentalConfig).
                "_profiler_level": "Level0" if level0 else "Level1",
                "_aic_metrics": "ACL_AICORE_NONE" if level0 else "ACL_AICORE_PIPE_UTILIZATION",
                "_l2_cache": False,
                "_msprof_tx": False,
                "_data_simplification": True,
                "record_op_args": False,
                "_export_type": export,
                "_op_attr": False,
                "_gc_detect_threshold": 1.0 if gc_events else None,  # the corpus: null
            },
        },
        "start_info": {
            "syscnt_enable": True,
            "freq": 100,
            "start_cnt": 17238197612056,
            "start_monotonic": start_ns,
        },
        "end_info": {"collectionTimeEnd": end_ns, "MonotonicTimeEnd": end_ns},
        "rank_id": rank,
    }


def _distributed(run: Run, rank: int) -> dict[str, Any]:
    topo = run.topology
    group = topo.group_of(rank)
    members = topo.members(group)
    groups = {
        run.group_ids[group]: {"group_name": "dp", "group_rank": members.index(rank), "global_ranks": members}
    }
    if topo.pp > 1:  # Megatron's pipeline group: one rank of each stage, its group_rank the stage
        pipeline = topo.members(topo.pipeline_group(rank))
        groups[run.group_ids[topo.pipeline_group(rank)]] = {
            "group_name": "pp",
            "group_rank": pipeline.index(rank),
            "global_ranks": pipeline,
        }
    return {
        "distributed_args": {
            "world_size": run.ranks,
            "tensor_model_parallel_size": topo.tp,
            "pipeline_model_parallel_size": topo.pp,
            "data_parallel_size": topo.dp,
            "context_parallel_size": 1,
            "expert_model_parallel_size": 1,
            "sequence_parallel": False,
        },
        "parallel_group_info": groups,
    }


def _device_info(device: int, start_ns: int, host: str) -> dict[str, Any]:
    return {
        "DeviceInfo": [
            {
                "id": device,
                "env_type": 3,
                "ctrl_cpu_id": "ARMv8_Cortex_A55",
                "ctrl_cpu_core_num": 1,
                "ctrl_cpu_endian_little": 1,
                "ts_cpu_core_num": 0,
                "ai_cpu_core_num": 6,
                "ai_core_num": AI_CORE_NUM,
                "ai_cpu_core_id": 2,
                "ai_core_id": 0,
                "aicpu_occupy_bitmap": 252,
                "ctrl_cpu": "0",
                "ai_cpu": "2,3,4,5,6",
                "aiv_num": AIV_NUM,
                "hwts_frequency": "50",
                "aic_frequency": str(NOMINAL_MHZ),
                "aiv_frequency": str(NOMINAL_MHZ),
                "hbm_capacity_mb": HBM_CAPACITY_MB,
            }
        ],
        "devices": str(device),
        "platform_version": "5",
        "hostname": host,
        "collectionDateBegin": str(start_ns // 1000),
    }


def _rank_setup(run: Run, rank: int) -> tuple[RankIds, RankRenderer]:
    topo = run.topology
    ids = RankIds(rank, rank % topo.per_node)
    groups = {g: str(double_hash(gid)) for g, gid in run.group_ids.items()}
    members = {g: topo.members(g) for g in run.group_ids}
    renderer = RankRenderer(
        ids,
        run.seed,
        groups,
        members,
        100 + run.seed % 900,
        run.reserved_mb,
        gc_events=run.gc_events,
        realistic_pmu=run.realistic_pmu,
        activation=run.activation,
    )
    return ids, renderer


def render_rank(
    run: Run, times: dict[tuple[int, int], StepTimes], rank: int, root: Path | None
) -> RankResult:
    """Render one rank; with `root` None nothing is written (used to measure the trace size)."""
    ids, renderer = _rank_setup(run, rank)
    topo = run.topology
    first, last = times[(rank, 0)], times[(rank, len(run.steps) - 1)]
    # Pipeline transfers run on one plane, to the neighbouring stage.
    planes = max(len(topo.peers(rank)), topo.pp > 1)
    header = header_events(ids, planes, topo.group_of(rank), run.gc_events)
    if run.level0:
        header = prune(header, ids)
    header.append(renderer.freq_event(first.start - 20_000_000, NOMINAL_MHZ))
    folder = None
    files: RankFiles | None = None
    sink = TraceWriter(None)
    db: DbWriter | None = None
    if root is not None:
        folder = root / f"{run.host}{topo.node(rank)}_{ids.host_pid}_{timestamp17(first.start)}_ascend_pt"
        files = RankFiles(folder / "ASCEND_PROFILER_OUTPUT", header, run.level0)
        if run.export in ("db", "both"):
            db = DbWriter(
                folder / "ASCEND_PROFILER_OUTPUT",
                ids,
                rank,
                run.env,
                run.group_ids,
                gc_events=run.gc_events,
                reduced=run.level0,
            )
    else:
        sink.write(header)
    rows: dict[int, dict[str, int]] = {}
    comm: list[dict[str, Any]] = []
    for index, step in enumerate(run.steps):
        plan = run.planner.plan(rank, index, step)
        step_times = times[(rank, index)]
        out = renderer.step(plan, step_times)
        if run.level0:
            out.events = prune(out.events, ids)
        rows[step] = out.trace_row
        comm.extend({"step": step, "name": op["name"], "elapse": op["elapse"]} for op in out.comm_ops)
        if files is not None:
            files.add(out, step, ts_text(step_times.start) + "\t", ids.device)
            if db is not None:
                db.add(out, step, step_times.start, step_times.end)
        else:
            sink.write(out.events)
    tail = [renderer.freq_event(last.end + 20_000_000, renderer.mhz, whole=True)]
    if files is None:
        sink.write(tail)
        sink.close()
        return RankResult(rank, None, sink.size, renderer, rows, comm)
    assert folder is not None
    size = files.close(tail, renderer)
    if db is not None:
        db.close(run.host)
        if run.export == "db":  # a db-only export has no CSV/JSON deliverables
            for path in files.paths():
                path.unlink()
    start, end = first.start - 40_000_000, last.end + 40_000_000
    export: str | list[str] = {"text": "text", "db": "db", "both": ["text", "db"]}[run.export]
    info = _profiler_info(rank, start, end, export, run.level0, run.gc_events)
    write_json(folder / f"profiler_info_{rank}.json", info)
    metadata: dict[str, Any] = {"ENV_VARIABLES": run.env}
    if run.distributed:
        metadata.update(_distributed(run, rank))
    write_json(folder / "profiler_metadata.json", metadata)
    tag = rng(run.seed, "prof", rank).randrange(10**6)
    prof = folder / f"PROF_{tag:06d}_{timestamp17(start)}_{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[rank % 26]}SYNTH"
    write_json(
        prof / f"device_{ids.device}" / f"info.json.{ids.device}", _device_info(ids.device, start, run.host)
    )
    return RankResult(rank, folder, size, renderer, rows, comm)


def _synth_run(spec: SynthSpec, steps: tuple[int, ...]) -> Run:
    check_faults(replace(spec, steps=steps))
    injection = Injection(replace(spec, steps=steps), steps)
    planner = SynthPlanner(spec, injection)
    offset = rng(spec.seed, "clock").randrange(10**9)
    topology = planner.topology
    run = Run(
        planner,
        spec.ranks,
        steps,
        spec.seed,
        spec.host,
        topology,
        injection.env(),
        [BASE_TIME_NS + offset] * spec.ranks,
        distributed=spec.ranks > 1,
        reserved_mb=62_100.0 if "memory.operators" in injection.faults else 38_912.0,
        export=spec.export,
        gc_events=spec.gc_events,
        realistic_pmu=spec.pmu_mode == "realistic",
        level0=spec.profiler_level == "Level0",
        activation=planner.work[0].model.activation,
    )
    return run


def _measure(spec: SynthSpec, steps: tuple[int, ...]) -> int:
    run = _synth_run(spec, steps)
    return render_rank(run, schedule(run.planner, run.ranks, steps, run.start_ns), 0, None).trace_bytes


def sized_spec(spec: SynthSpec) -> SynthSpec:
    """`spec` with as many steps (and, for tiny targets, as few layers) as reach `size_mb` per rank."""
    if spec.size_mb is None:
        return spec
    target = spec.size_mb * 1e6
    first = min(spec.steps)
    for _ in range(3):
        one = _measure(spec, (first,))
        three = _measure(spec, (first, first + 1, first + 2))
        per_step, fixed = (three - one) / 2, one - (three - one) / 2
        # Keep each step under a tenth of the target, so whole steps can land within ±10 %.
        stages = spec.pipeline_parallel  # each stage keeps a whole number of layers
        if per_step <= target / 10 or spec.layers == stages:
            break
        spec = replace(spec, layers=max(stages, int(spec.layers * target / 10 / per_step) // stages * stages))
    count = max(1, round((target - fixed) / per_step))
    return replace(spec, steps=tuple(range(first, first + count)))


def write_synth_profile(dest: str | Path, spec: SynthSpec) -> Path:
    """Write the profile of `spec` (one folder per rank) and `ground_truth.json` into `dest`; returns `dest`.

    Refuses a `dest` that exists and is not empty (InputError).
    """
    root = prepare_dest(dest)
    began = time.perf_counter()
    spec = sized_spec(spec)
    run = _synth_run(spec, spec.steps)
    times = schedule(run.planner, run.ranks, run.steps, run.start_ns)
    results = [render_rank(run, times, rank, root) for rank in range(run.ranks)]
    assert isinstance(run.planner, SynthPlanner)
    graph = run.planner.inj.faults.get("computation.graph_fusion")
    for result in results:
        if graph and result.rank in graph.ranks and result.folder is not None:
            write_graph_dump(result.folder, attention_graph(spec.batch, spec.layers))
    truth = build_ground_truth(spec, run.planner.inj, results)
    truth.update(workload_truth(spec, run.planner, results))
    truth["generation"] = {
        "seconds": round(time.perf_counter() - began, 3),
        "trace_view_bytes": {str(r.rank): r.trace_bytes for r in results},
    }
    write_json(root / "ground_truth.json", truth)
    return root


def write_demo_profile(
    dest: str | Path,
    ranks: int = 2,
    steps: Sequence[int] = (12, 13, 14),
    *,
    seed: int = 0,
    spec: DemoSpec | None = None,
) -> Path:
    """Write a demo cluster (one `*_ascend_pt` folder per rank) into `dest`; returns `dest`.

    `spec` overrides `ranks`, `steps` and `seed`. Refuses a `dest` that exists and is not empty.
    """
    spec = spec or DemoSpec(ranks=ranks, steps=tuple(steps), seed=seed)
    root = prepare_dest(dest)
    planner = DemoPlanner(spec, plan_demo(spec))
    starts = [
        BASE_TIME_NS + r * 2_000_000 + rng(spec.seed, "folder", r).randrange(1_000_000)
        for r in range(spec.ranks)
    ]
    run = Run(
        planner,
        spec.ranks,
        spec.steps,
        spec.seed,
        spec.host,
        planner.topology,
        dict(DEMO_ENV),
        starts,
        distributed=False,
    )
    times = schedule(planner, spec.ranks, spec.steps, starts)
    for rank in range(spec.ranks):
        render_rank(run, times, rank, root)
    return root
