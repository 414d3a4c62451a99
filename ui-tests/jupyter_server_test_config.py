"""Server configuration for integration tests.

!! Never use this configuration in production because it
opens the server to the world and provide access to JupyterLab
JavaScript objects through the global window variable.
"""

import os
import shutil
import tempfile
from pathlib import Path

from advisor.demo import DEMO_TRAINING_LOG, DemoSpec, write_demo_profile, write_demo_training_log
from advisor.synth import SynthSpec, write_synth_profile
from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821  (`c` is injected by traitlets)

# configure_jupyter_server hard-codes port 8888; keep it overridable.
c.ServerApp.port = int(os.environ.get("UI_TEST_PORT", "8888"))  # noqa: F821
# CI runs as root.
c.ServerApp.allow_root = True  # noqa: F821
# No network calls and no news toast over the UI.
c.LabApp.extension_manager = "readonly"  # noqa: F821
c.LabApp.news_url = None  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821

# One analysis at a time on the 2-core test machines.
c.AdvisorApp.max_concurrent_tasks = 1  # noqa: F821
# obs:// paths need an endpoint to be accepted; this one is never contacted (there are no credentials).
c.AdvisorApp.obs_endpoint = "http://127.0.0.1:9"  # noqa: F821
# A task store of its own: tasks of earlier test runs must not show up.
c.AdvisorApp.reports_dir = tempfile.mkdtemp(prefix="pa-ui-tests-")  # noqa: F821

# The demo profile the tests analyse: <root>/profiling_dir1 (2 ranks, steps 12-14), with its
# training log <root>/profiling_dir1/trainer_log.jsonl.
demo_profile = Path(c.ServerApp.root_dir) / "profiling_dir1"  # noqa: F821
if not demo_profile.exists():
    write_demo_profile(demo_profile)
# The demo job's training log, as `performance-advisor demo` writes it: in the profile's folder.
if not (demo_profile / DEMO_TRAINING_LOG).exists():
    write_demo_training_log(demo_profile / DEMO_TRAINING_LOG)

# A baseline for "Compared Profiling Data": the same job with faster computation, so the target
# (profiling_dir1) shows a regression against it.
baseline_profile = Path(c.ServerApp.root_dir) / "profiling_dir1_baseline"  # noqa: F821
if not baseline_profile.exists():
    write_demo_profile(baseline_profile, spec=DemoSpec(computing_us=30_000.0, seed=1))

# A profile with a finding in every problem dimension, for the report test: <root>/profiling_all_dims.
# 2 ranks and 2 steps: written in well under a second, analysed in a few seconds.
all_dims_profile = Path(c.ServerApp.root_dir) / "profiling_all_dims"  # noqa: F821
if not all_dims_profile.exists():
    write_synth_profile(
        all_dims_profile,
        SynthSpec(
            ranks=2,
            steps=(12, 13),
            seed=1,
            inject=(
                "computation.aicpu",
                "schedule.host_sync",
                "communication.small_packet",
                "memory.operators",
                "dataloader.slow",
            ),
        ),
    )

# PyTorch profiler (Kineto) traces recorded with torch's CPU build (tests/data/kineto, see its
# README): one trace file, <root>/kineto_host_bound.pt.trace.json.gz, and a folder of two ranks' traces
# (DDP on gloo), <root>/kineto_ddp.
kineto_data = Path(__file__).resolve().parents[1] / "tests" / "data" / "kineto"
kineto_file = Path(c.ServerApp.root_dir) / "kineto_host_bound.pt.trace.json.gz"  # noqa: F821
if not kineto_file.exists():
    shutil.copyfile(next((kineto_data / "host_bound").glob("*.pt.trace.json.gz")), kineto_file)
kineto_folder = Path(c.ServerApp.root_dir) / "kineto_ddp"  # noqa: F821
if not kineto_folder.exists():
    shutil.copytree(kineto_data / "ddp_straggler", kineto_folder)
