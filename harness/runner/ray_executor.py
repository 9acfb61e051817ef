"""``--executor ray``: every cell of the matrix a Ray task; only the driver writes the store.

The driver (the ``pytest suites/`` process) collects the tests as usual, then hands each
cell's tests to a Ray task (Ray Core remote functions; the pattern pytest-xdist follows for
its workers). The task runs a fresh pytest session on the cell's node ids with the driver's
options (:class:`~harness.runner.pytest_plugin.CellWorker`), which prepares the candidate and
runs the selected suites exactly as the local executor does, into a SQLite file private to the
task. It sends back the rows and the serialized test reports (``pytest_report_to_serializable``);
the driver imports the rows in one transaction per cell and replays the reports, so the
terminal, the exit status and the summary are those of a local run. No database file is
shared between machines; trained candidates are, through ``TUNEBENCH_CACHE``.

Ray is imported only here, only with ``--executor ray`` (``pip install 'tunebench[ray]'``).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from harness.core import plugins
from harness.runner.matrix import Cell
from harness.runner.session import ExperimentSession, SessionOptions

FORWARDED_ENV_PREFIXES = ("TUNEBENCH_", "HF_", "TRANSFORMERS_")
"""Environment variables of the driver passed to every task (besides ``PYTHONPATH``)."""


@dataclass
class CellSpec:
    """What a task needs to run one cell like the driver would."""

    cell: Cell
    options: SessionOptions
    nodeids: list[str]
    rootdir: str
    plugins: list[str] = field(default_factory=list)
    """The driver's ``-p`` plugins."""


@dataclass
class CellResult:
    """What a task sends back."""

    cell_id: str
    exit_code: int
    output: str
    """The end of the task's pytest output (what went wrong when no test ran)."""
    runs: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    host: str
    resources: dict[str, float]
    seconds: float


class _ReportCollector:
    """Keeps the serialized report of every test phase of the task's pytest session."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.config: pytest.Config | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        assert self.config is not None
        self.reports.append(self.config.hook.pytest_report_to_serializable(
            config=self.config, report=report))


def run_cell(spec: CellSpec) -> CellResult:
    """The body of a Ray task: one cell's tests in a fresh pytest session."""
    import ray

    from harness.runner.pytest_plugin import CellWorker
    from harness.runner.store import Store

    started = time.perf_counter()
    if Path(spec.rootdir).is_dir():  # a shared checkout; else the shipped working_dir
        os.chdir(spec.rootdir)
    with tempfile.TemporaryDirectory(prefix="tunebench-cell-") as folder:
        options = replace(spec.options, results=Path(folder) / "cell.db", resume=False)
        collector = _ReportCollector()
        plugin_args = [arg for name in spec.plugins for arg in ("-p", name)]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            exit_code = pytest.main(
                [*spec.nodeids, *plugin_args, "-p", "no:cacheprovider", "-q", "--no-header",
                 f"--rootdir={spec.rootdir}"],
                plugins=[CellWorker(options, spec.cell), collector],
            )
        runs: list[dict[str, Any]] = []
        if options.results.exists():
            store = Store(options.results)
            try:
                runs = store.export_runs()
            finally:
                store.close()
    return CellResult(
        cell_id=spec.cell.id, exit_code=int(exit_code), output=output.getvalue()[-4000:],
        runs=runs, reports=collector.reports,
        host=socket.gethostname(),
        resources=dict(ray.get_runtime_context().get_assigned_resources()),
        seconds=time.perf_counter() - started,
    )


def _driver_plugins(config: pytest.Config) -> list[str]:
    """The ``-p NAME`` plugins the driver was started with (tasks load them too)."""
    args = list(config.invocation_params.args)
    names = []
    for k, arg in enumerate(args):
        if arg == "-p" and k + 1 < len(args):
            names.append(args[k + 1])
        elif arg.startswith("-p") and len(arg) > 2:
            names.append(arg[2:])
    return [n for n in names if not n.startswith("no:")]


def _progress(done: int, total: int, failed: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} cells, {failed} failed"


class RayExecutor:
    """A pytest plugin that replaces the test loop with Ray tasks, one per cell."""

    def __init__(self, config: pytest.Config, experiment: ExperimentSession) -> None:
        self.config = config
        self.experiment = experiment
        self.cpus: float = config.getoption("ray_cpus")
        self.gpus: float | None = config.getoption("ray_gpus")

    def resources(self, cell: Cell, cluster_gpus: float) -> dict[str, float]:
        """``num_cpus`` for every cell; ``num_gpus`` for cells that train (1 when the cluster
        has GPUs unless ``--ray-gpus`` says otherwise), none for the others."""
        gpus = 0.0
        if self.experiment.trains(cell.approach):
            gpus = self.gpus if self.gpus is not None else (1.0 if cluster_gpus else 0.0)
        return {"num_cpus": self.cpus, "num_gpus": gpus}

    def _connect(self) -> Any:
        try:
            import ray
        except ImportError:
            raise pytest.UsageError(
                "--executor=ray needs Ray: pip install 'tunebench[ray]'") from None
        env = {k: v for k, v in os.environ.items()
               if k.startswith(FORWARDED_ENV_PREFIXES) or k == "PYTHONPATH"}
        if not ray.is_initialized():
            # RAY_ADDRESS (read by ray.init) selects a cluster; else a local instance starts
            # with this machine's cores.
            try:
                ray.init(runtime_env={"env_vars": env}, log_to_driver=False,
                         include_dashboard=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = os.environ.get("RAY_ADDRESS") or "a new local instance"
                raise pytest.UsageError(
                    f"--executor=ray: could not start or reach Ray ({where}): {error}. Check "
                    "RAY_ADDRESS, or unset it to start a local instance.") from None
        return ray

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        cells: dict[str, list[pytest.Item]] = {}
        local: list[pytest.Item] = []
        experiment = self.experiment
        for item in session.items:
            cell = experiment.test_cells.get(item.nodeid)
            reused = cell is not None and experiment.options.resume and (
                experiment.finished_run(experiment.cell_hash_of(cell)) is not None)
            if cell is None or reused:
                local.append(item)  # not a cell's test, or skipped as reused: no task
            else:
                cells.setdefault(cell.id, []).append(item)
        self._run_locally(local)
        if cells:
            self._run_on_ray(session, cells)
        return True

    def _run_locally(self, items: list[pytest.Item]) -> None:
        for k, item in enumerate(items):
            following = items[k + 1] if k + 1 < len(items) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)

    def _run_on_ray(self, session: pytest.Session, cells: dict[str, list[pytest.Item]]) -> None:
        ray = self._connect()
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")

        def write(line: str) -> None:
            if reporter is None:
                print(line, flush=True)
                return
            reporter.ensure_newline()
            reporter.write_line(line)

        experiment = self.experiment
        cluster_gpus = ray.cluster_resources().get("GPU", 0.0)
        # A fresh worker process per cell (max_calls=1): no pytest session, model or CUDA
        # memory left over from the previous cell.
        task = ray.remote(max_calls=1)(run_cell)
        pending: dict[Any, Cell] = {}
        for cell_id, items in cells.items():
            cell = experiment.test_cells[items[0].nodeid]
            spec = CellSpec(cell, experiment.options, [i.nodeid for i in items],
                            str(session.config.rootpath), _driver_plugins(session.config))
            ref = task.options(**self.resources(cell, cluster_gpus), max_retries=0,
                               name=f"tunebench {cell_id}").remote(spec)
            pending[ref] = cell
        write(f"tunebench: {len(pending)} cells submitted to Ray "
              f"({ray.cluster_resources().get('CPU', 0):g} CPUs, {cluster_gpus:g} GPUs)")
        done = failed = 0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    result: CellResult = ray.get(ready[0])
                    ok = self._gather(session, cells[cell.id], result)
                    note = (f"{'finished' if ok else 'failed'} on {result.host} in "
                            f"{result.seconds:.1f} s")
                except Exception as error:  # the task raised or its worker died
                    ok = False
                    message = "".join(traceback.format_exception_only(error)).strip()
                    self._fail(session, cell, cells[cell.id], message)
                    note = f"failed: {message.splitlines()[0]}"
                done += 1
                failed += not ok
                write(f"{_progress(done, len(cells), failed)}  {cell.id} {note}")
                stop = session.shouldfail or session.shouldstop  # -x, --maxfail
                if stop:
                    self._cancel(ray, pending, f"cancelled: {stop}")
                    return
        except KeyboardInterrupt:
            self._cancel(ray, pending, "cancelled: Ctrl-C on the driver")
            raise

    def _cancel(self, ray: Any, pending: dict[Any, Cell], reason: str) -> None:
        """Cancel the tasks not finished (their workers are killed) and record their runs
        ``interrupted`` with ``reason``."""
        for ref, cell in pending.items():
            ray.cancel(ref, force=True)
            self._record(cell, "interrupted", reason)

    def _gather(self, session: pytest.Session, items: list[pytest.Item],
                result: CellResult) -> bool:
        """Import a finished task's rows and replay its reports; whether all passed."""
        experiment = self.experiment
        info = {"executor": {"name": "ray", "host": result.host,
                             "resources": result.resources,
                             "task_seconds": round(result.seconds, 3)}}
        ids = experiment.store.import_runs(result.runs, session=experiment.options.session,
                                           info=info)
        experiment.run_ids.extend(ids)
        plugins.pm.hook.on_runs_imported(store=experiment.store, run_ids=ids)
        if not result.runs and result.exit_code != 0:  # the task's pytest stopped early
            cell = experiment.test_cells[items[0].nodeid]
            self._record(cell, "failed", f"pytest exit {result.exit_code} on {result.host}:\n"
                                      f"{result.output}")
        by_node: dict[str, list[dict[str, Any]]] = {}
        for data in result.reports:
            by_node.setdefault(data["nodeid"], []).append(data)
        hook = session.config.hook
        for item in items:
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            reports = [hook.pytest_report_from_serializable(config=session.config, data=d)
                       for d in by_node.get(item.nodeid, [])]
            if not reports:
                reports = [_failed_report(item, f"the Ray task for this cell did not run "
                                                f"{item.nodeid} (pytest exit {result.exit_code})")]
            for report in reports:
                item.ihook.pytest_runtest_logreport(report=report)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return result.exit_code == 0

    def _record(self, cell: Cell, status: str, message: str) -> None:
        """A run of ``cell`` closed with ``status`` and ``message``, for a cell whose task
        left no run of its own (it failed early, died or was cancelled)."""
        experiment = self.experiment
        run_id = experiment.store.start_run(experiment.run_record(
            cell.approach, cell.seed, point=cell.point))
        experiment.store.finish_run(run_id, status, message)
        experiment.run_ids.append(run_id)
        plugins.pm.hook.on_runs_imported(store=experiment.store, run_ids=[run_id])

    def _fail(self, session: pytest.Session, cell: Cell, items: list[pytest.Item],
              message: str) -> None:
        """A task that raised or whose worker died: its run is recorded failed with the
        error and each of its tests reports it."""
        self._record(cell, "failed", message)
        for item in items:
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            item.ihook.pytest_runtest_logreport(report=_failed_report(item, message))
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _failed_report(item: pytest.Item, message: str) -> pytest.TestReport:
    return pytest.TestReport(item.nodeid, item.location, keywords={}, outcome="failed",
                             longrepr=message, when="setup")
