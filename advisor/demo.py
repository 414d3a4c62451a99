"""The demo profile (a thin front to `advisor.synth`, kept for its callers)."""

from .synth import DemoSpec, DemoStep, plan_demo, write_demo_profile
from .synth.text_export import STEP_TRACE_HEADER

__all__ = ["STEP_TRACE_HEADER", "DemoSpec", "DemoStep", "plan_demo", "write_demo_profile"]
