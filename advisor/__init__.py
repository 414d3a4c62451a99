"""Performance Advisor: a JupyterLab extension and engine that explains slow training jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Analysis as Analysis
    from .api import Finding as Finding
    from .api import Metrics as Metrics
    from .api import Profile as Profile
    from .api import analyze as analyze
    from .api import open_profile as open_profile

from .tool_version import __version__


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlab-performance-advisor"}]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server.app import AdvisorApp

    return [{"module": "advisor", "app": AdvisorApp}]


# The Python API (advisor/api.py), imported on first use: `import advisor` is also the server
# extension's entry point, which must not pay for pandas and the engine.
_API = ("Analysis", "Finding", "Metrics", "Profile", "analyze", "open_profile")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
