"""Performance Advisor: a JupyterLab extension and engine that explains slow training jobs."""

from __future__ import annotations

try:
    from ._version import __version__
except ImportError:  # a source checkout that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlab-performance-advisor"}]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server.app import AdvisorApp

    return [{"module": "advisor", "app": AdvisorApp}]
