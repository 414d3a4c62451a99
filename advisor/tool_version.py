"""The package's version, in a module of its own: the modules that name it (engine, cli) import it
from here, not from `advisor` itself, whose lazy API (advisor.api) imports them."""

from __future__ import annotations

try:
    from ._version import __version__
except ImportError:  # a source checkout that was never built
    __version__ = "0.0.0.dev0"
