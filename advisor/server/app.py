"""The Performance Advisor server extension: configuration and wiring."""

from __future__ import annotations

from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Unicode, default, validate

from ..options import DEFAULT_PROCESSES_CAP, MAX_PROCESSES, MIN_PROCESSES, Deployment, default_process_count
from .handlers import handler_routes
from .paths import PathResolver
from .runner import TaskRunner, end_orphaned_analyses
from .store import TaskStore
from .warm import WarmWorker


class AdvisorApp(ExtensionApp):
    """Analyses profiling data in subprocesses and serves the reports to JupyterLab."""

    name = "advisor"
    load_other_extensions = True

    max_concurrent_tasks = Int(
        1, config=True, help="How many analyses may run at once; the others wait in the queue."
    )
    default_processes = Int(
        default_process_count(),
        config=True,
        help="Worker processes per analysis (advisor_analyze_processes) when the request does not say. "
        f"Default: the usable cores, at most {DEFAULT_PROCESSES_CAP}.",
    )
    task_timeout = Float(
        3600.0, config=True, help="Seconds after which a running analysis is stopped and fails (0: no limit)."
    )
    max_queued_tasks = Int(
        5000,
        config=True,
        help="How many analyses may wait in the queue; a submission beyond that is refused (429).",
    )
    max_request_bytes = Int(
        65536,
        config=True,
        help="Largest request body the REST API accepts, in bytes; a larger one is refused (413).",
    )
    reports_dir = Unicode(
        config=True,
        help="Folder for the task database (tasks.sqlite) and the per-task logs. "
        "Default: <jupyter data dir>/performance_advisor.",
    )
    allowed_roots = List(
        Unicode(),
        config=True,
        help="Folders whose profiling data may be analysed and where reports may be written. "
        "Relative entries are taken from the server root. Default: the server root only.",
    )

    dask_scheduler_address = Unicode(
        "",
        config=True,
        help="Run the per-rank work of every analysis on this Dask scheduler, e.g. tcp://host:8786 "
        "(needs the dask extra; the workers must read the same paths). Default: local processes.",
    )

    warm_worker = Bool(
        True,
        config=True,
        help="Fork each analysis from a worker process that has the analysis code imported (about 1 s "
        "less per task); off: each analysis is a fresh `python -m advisor analyze` subprocess.",
    )
    warm_worker_max_tasks = Int(
        100, config=True, help="Replace the warm worker by a fresh one after it started this many analyses."
    )
    warm_worker_max_rss_mb = Int(
        1024,
        config=True,
        help="Replace the warm worker by a fresh one when its resident memory grows past this many MiB.",
    )

    # Object storage (obs:// and s3:// paths). Unset: the server's environment (HUAWEICLOUD_SDK_AK/SK or
    # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, OBS_ENDPOINT or AWS_ENDPOINT_URL) is used as it is.
    obs_endpoint = Unicode(
        "", config=True, help="OBS/S3 endpoint URL, e.g. https://obs.cn-north-4.myhuaweicloud.com."
    )
    obs_access_key_id = Unicode("", config=True, help="OBS/S3 access key (AK).")
    obs_secret_access_key = Unicode(
        "", config=True, help="OBS/S3 secret key (SK); passed to the analysis in its environment only."
    )
    obs_security_token = Unicode("", config=True, help="Temporary security token, with temporary AK/SK.")
    obs_cache_dir = Unicode(
        "", config=True, help="Download cache folder. Default: ~/.cache/performance-advisor/objects."
    )
    obs_cache_size_mb = Int(
        0, config=True, help="Download cache limit in MiB; least recently used files go first (0: 20480)."
    )

    @default("reports_dir")
    def _default_reports_dir(self) -> str:
        return str(Path(jupyter_data_dir()) / "performance_advisor")

    @validate("max_concurrent_tasks")
    def _check_concurrency(self, proposal: dict) -> int:
        if proposal["value"] < 1:
            raise ValueError("max_concurrent_tasks must be at least 1")
        return proposal["value"]

    @validate("max_queued_tasks", "max_request_bytes", "warm_worker_max_tasks", "warm_worker_max_rss_mb")
    def _check_positive(self, proposal: dict) -> int:
        if proposal["value"] < 1:
            raise ValueError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    @validate("default_processes")
    def _check_processes(self, proposal: dict) -> int:
        if not MIN_PROCESSES <= proposal["value"] <= MAX_PROCESSES:
            raise ValueError(f"default_processes must be between {MIN_PROCESSES} and {MAX_PROCESSES}")
        return proposal["value"]

    def object_store_env(self) -> dict[str, str]:
        """The configured object-store settings as the environment variables the CLI reads."""
        from ..storage import config as names

        env: dict[str, str] = {}
        if self.obs_endpoint:
            env[names.OBS_ENDPOINT] = env[names.AWS_ENDPOINT] = self.obs_endpoint
        if self.obs_access_key_id and self.obs_secret_access_key:
            env[names.OBS_AK] = env[names.AWS_AK] = self.obs_access_key_id
            env[names.OBS_SK] = env[names.AWS_SK] = self.obs_secret_access_key
            env[names.OBS_TOKEN] = env[names.AWS_TOKEN] = self.obs_security_token
        if self.obs_cache_dir:
            env[names.CACHE_DIR_ENV] = self.obs_cache_dir
        if self.obs_cache_size_mb > 0:
            env[names.CACHE_MB_ENV] = str(self.obs_cache_size_mb)
        return env

    def initialize_settings(self) -> None:
        state_dir = Path(self.reports_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = TaskStore(state_dir / "tasks.sqlite")
        orphans = end_orphaned_analyses(self.store.active_process_groups())
        if orphans:
            self.log.warning("Performance Advisor: ended %d leftover analysis process(es)", len(orphans))
        interrupted = self.store.recover_interrupted()
        if interrupted:
            self.log.info("Performance Advisor: %d task(s) interrupted by the last shutdown", interrupted)
        resolver = PathResolver(self.serverapp.root_dir, self.allowed_roots)
        self.runner = TaskRunner(
            self.store,
            resolver,
            logs_dir=state_dir / "logs",
            max_concurrent=self.max_concurrent_tasks,
            timeout_s=self.task_timeout,
            log=self.log,
            store_env=self.object_store_env(),
            reports_dir=state_dir / "reports",
            deployment=Deployment(self.dask_scheduler_address or None),
            warm_worker=(
                WarmWorker(
                    max_tasks=self.warm_worker_max_tasks, max_rss_mb=self.warm_worker_max_rss_mb, log=self.log
                )
                if self.warm_worker
                else None
            ),
        )
        self.settings["performance_advisor"] = {
            "store": self.store,
            "runner": self.runner,
            "resolver": resolver,
            "default_processes": self.default_processes,
            "max_queued_tasks": self.max_queued_tasks,
            "max_request_bytes": self.max_request_bytes,
        }

    def initialize_handlers(self) -> None:
        self.handlers.extend(handler_routes())

    async def stop_extension(self) -> None:
        await self.runner.shutdown()
        self.store.close()
