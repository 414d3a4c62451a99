"""Level0 exports (`SynthSpec(profiler_level="Level0")`): what torch_npu writes when it collects only
the framework, the NPU tasks and the communication ops, without CANN's AscendCL layer, the AI Core
PMU or HCCL's tasks.

Sources:
* torch_npu.profiler.ProfilerLevel docs: Level1 adds "CANN-layer AscendCL data, AI Core metrics
  (aic_metrics=PipeUtilization) and HCCL's communication.json and communication_matrix.json" to
  Level0; MindSpore's docs of the same CANN levels: Level0 keeps "the basic data of the big
  communication ops", Level1 adds "the small communication ops" (HCCL's plane tasks).
* torch_npu ProfilerConfig: LEVEL_PARSER_CONFIG gives Level0 only npu_module_mem (op_statistic.csv
  and api_statistic.csv need Level1); LEVEL_TRACE_PRUNE_CONFIG[Level0] removes from trace_view.json
  every event whose name starts with CANN, AscendCL, Runtime, GE, Node, Model, Hccl or acl_to_npu,
  and the process whose name is one of them; the default aic_metrics at Level0 is AiCoreNone, with
  which KernelViewParser writes only OP_SUMMARY_SHOW_HEADERS (no shapes, formats, PMU columns).
* MindStudio Insight tells the levels apart by kernel_details.csv lacking `Input Shapes` at Level0.
"""

from __future__ import annotations

from typing import Any

from .render import RankIds

LEVEL1_ONLY_FILES = (
    "op_statistic.csv",
    "api_statistic.csv",
    "communication.json",
    "communication_matrix.json",
)
KERNEL_COLUMNS = (
    "Step Id",
    "Name",
    "Type",
    "Accelerator Core",
    "Start Time(us)",
    "Duration(us)",
    "Wait Time(us)",
    "Block Dim",
)
_PRUNED = ("CANN", "AscendCL", "Runtime", "GE", "Node", "Model", "Hccl", "acl_to_npu")
# Tables of the db export that hold only Level1 data (AscendCL/node APIs, PMU, HCCL tasks, and
# analysis.db's communication analysis, which is built from the HCCL tasks).
PROFILER_TABLES = ("CANN_API", "TASK_PMU_INFO", "COMMUNICATION_TASK_INFO")
ANALYSIS_TABLES = ("CommAnalyzerBandwidth", "CommAnalyzerMatrix", "CommAnalyzerTime")


def prune(events: list[dict[str, Any]], ids: RankIds) -> list[dict[str, Any]]:
    """The events a Level0 trace keeps: torch_npu's prune rule, and nothing CANN's layer or HCCL's
    tasks would have produced (the CANN process, its HostToDevice flows, the HCCL plane threads)."""
    return [
        e
        for e in events
        if not e["name"].startswith(_PRUNED)
        and e.get("args", {}).get("name") not in _PRUNED
        and e["pid"] != ids.cann
        and not e["name"].startswith("HostToDevice")
        and not (e["pid"] == ids.hccl and e.get("tid", 0) != 0)
    ]
