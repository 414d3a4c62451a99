"""Build hook: compile the C trace scanner (advisor/formats/ascend_text/_tracescan.c: trace_view.json
and Kineto trace pieces) into the wheel.

The wheel becomes platform-specific. An editable install compiles it next to its source. Without a
C compiler or the Python headers the build stops and says so; PERFORMANCE_ADVISOR_PURE_PYTHON=1
builds without the scanner (the trace readers then parse with their Python path: trace_view.json
about 2x slower, Kineto traces about 9x).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("advisor/formats/ascend_text/_tracescan.c")
PURE_PYTHON = "PERFORMANCE_ADVISOR_PURE_PYTHON"


def compile_extension(root: Path, folder: Path) -> Path:
    """Compile the scanner into `folder` with the compiler Python was built with; the module's path."""
    target = folder / f"_tracescan{sysconfig.get_config_var('EXT_SUFFIX')}"
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    flags = ["-O2", "-std=c11", "-fPIC", "-shared", "-fvisibility=hidden"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    include = sysconfig.get_paths()["include"]
    command = [*compiler, *flags, f"-I{include}", str(root / SOURCE), "-o", str(target)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise RuntimeError(
            f"cannot compile {SOURCE} ({' '.join(command)}):\n{detail}\n"
            f"Install a C compiler and the Python headers (Debian: gcc python3-dev), or set "
            f"{PURE_PYTHON}=1 to build without the C trace scanner."
        ) from None
    return target


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or os.environ.get(PURE_PYTHON) == "1":
            return
        root = Path(self.root)
        if version == "editable":  # the package is imported from the source tree
            compile_extension(root, root / SOURCE.parent)
            return
        self._scratch = tempfile.TemporaryDirectory()
        target = compile_extension(root, Path(self._scratch.name))
        build_data["force_include"][str(target)] = str(SOURCE.parent / target.name)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        if getattr(self, "_scratch", None) is not None:
            self._scratch.cleanup()
