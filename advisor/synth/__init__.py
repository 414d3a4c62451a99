"""The fault-injecting profile generator: Ascend PyTorch Profiler output with known problems.

`write_synth_profile(dest, SynthSpec(...))` writes a cluster of `*_ascend_pt` rank folders whose files
agree with each other, plus `ground_truth.json`; `write_demo_profile` writes the small demo.
"""

from .faults import FAULTS, parse_faults
from .generate import write_demo_profile, write_synth_profile
from .spec import DemoSpec, DemoStep, SynthSpec, plan_demo
from .validate import check_faults

__all__ = [
    "FAULTS",
    "DemoSpec",
    "DemoStep",
    "SynthSpec",
    "check_faults",
    "parse_faults",
    "plan_demo",
    "write_demo_profile",
    "write_synth_profile",
]
