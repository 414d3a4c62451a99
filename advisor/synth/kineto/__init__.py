"""Synthetic PyTorch profiler (Kineto) traces with injected faults and their ground truth.

`write_kineto_traces(dest, KinetoSpec(...))` writes one Chrome-trace JSON per rank (new or 2021
schema, gzipped or not, named per rank or as tensorboard_trace_handler names them) and
`ground_truth.json`: which faults were built in, on which ranks and steps, and the time each one
costs per step as measured from the written events.
"""

from .spec import KINETO_COLLATERAL, KINETO_FAULTS, KinetoSpec
from .write import write_kineto_traces

__all__ = ["KINETO_COLLATERAL", "KINETO_FAULTS", "KinetoSpec", "write_kineto_traces"]
