"""Fixtures for the server tests: a Jupyter server with the extension and a demo profile in its root."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture(autouse=True)
def table_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty table cache of its own (never the user's ~/.cache)."""
    folder = tmp_path_factory.mktemp("table_cache")
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE", str(folder))
    return folder


@pytest.fixture
def advisor_config() -> dict:
    """Per-test overrides of AdvisorApp traitlets."""
    return {}


@pytest.fixture
def advisor_state_dir(tmp_path):
    path = tmp_path / "advisor_state"
    path.mkdir()
    return path


@pytest.fixture
def jp_server_config(advisor_state_dir, advisor_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"advisor": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "AdvisorApp": {"reports_dir": str(advisor_state_dir), **advisor_config},
    }


@pytest.fixture
def demo_profile(jp_root_dir):
    from advisor.demo import write_demo_profile

    return write_demo_profile(jp_root_dir / "profiling_dir1")
