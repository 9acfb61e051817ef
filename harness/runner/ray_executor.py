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

Lost workers and nodes (``--ray-retries N``, default 2). Ray's rule for tasks is to run a task
again when its worker or node dies and to leave the task's own exceptions alone
(``max_retries`` with ``retry_exceptions=False``, Ray Core's "Fault Tolerance: Tasks"). The
driver applies that rule itself rather than leaving it to Ray: each task is submitted with
``max_retries=0``, a cell whose attempt ends in a system failure (:func:`lost_part`: Ray's
``WorkerCrashedError``, ``NodeDiedError``, ``ObjectLostError`` or ``OutOfMemoryError``) is
submitted again, up to N times, wherever Ray places it, and an exception raised by the cell's
code (``RayTaskError``) fails the cell at once. Ray's own retries would run the same task with
the same arguments and tell no one: the driver could not say "retrying lora after a lost
worker (attempt 2 of 3)", the task could not learn its attempt number (Ray 2.60's runtime
context has none), and where a dead attempt ran would die with it. Resubmitted by the driver,
every attempt is a task of its own with its number in its :class:`CellSpec`, and a streaming
generator (``num_returns="streaming"``) whose first item, :class:`Started`, tells the driver
its host and node before any work starts; so ``executor.attempts`` and the hosts and nodes of
all attempts are recorded even when an attempt dies. Each attempt writes its private SQLite
file in a folder named by session, cell and attempt that it empties first, and rows leave a
task only in its final result: a dead attempt's half-written file is never imported, and the
attempt after it starts clean. Streaming tasks are Ray Core's: Ray Client (``ray://``) cannot
run them, so the driver runs on a node of the cluster (``RAY_ADDRESS=<head>:6379``).

Ray is imported only here, only with ``--executor ray`` (``pip install 'tunebench[ray]'``).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Iterator
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
    attempt: int = 1
    """1 for the first submission, 2 for the first retry after a lost worker or node, ..."""


@dataclass
class Started:
    """A task's first item: where this attempt of the cell runs (sent before any work)."""

    host: str
    node: str
    """The Ray node id (two nodes on one machine share the host name)."""


@dataclass
class CellResult:
    """What a task sends back at its end."""

    cell_id: str
    exit_code: int
    output: str
    """The end of the task's pytest output (what went wrong when no test ran)."""
    runs: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    host: str
    node: str
    resources: dict[str, float]
    seconds: float


@dataclass
class Attempts:
    """The attempts of one cell so far: where each ran and why the lost ones ended."""

    cell: Cell
    hosts: list[str | None] = field(default_factory=list)
    """Host of each attempt, in order (``None``: it died before it said where it ran)."""
    nodes: list[str | None] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    """Why each lost attempt ended."""

    @property
    def count(self) -> int:
        return len(self.hosts)

    def begin(self) -> int:
        """Count one more attempt; its number."""
        self.hosts.append(None)
        self.nodes.append(None)
        return self.count

    def started(self, where: Started) -> None:
        self.hosts[-1], self.nodes[-1] = where.host, where.node

    def info(self) -> dict[str, Any]:
        """The run's ``executor`` fields that say how it got there."""
        return {"attempts": self.count, "hosts": self.hosts, "nodes": self.nodes,
                **({"lost": self.lost} if self.lost else {})}


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


def attempt_folder(spec: CellSpec) -> Path:
    """Where an attempt keeps its private results file: one folder per session and cell on
    each node, with a subfolder per attempt."""
    cell = re.sub(r"[^\w.-]", "_", f"{spec.options.session}-{spec.cell.id}")
    return Path(tempfile.gettempdir()) / f"tunebench-cell-{cell}" / f"attempt-{spec.attempt}"


def run_cell(spec: CellSpec) -> Iterator[Started | CellResult]:
    """The body of a Ray task: where it runs, then one cell's tests in a fresh pytest session.

    The cell's folder on this node is emptied first (what a dead attempt left here is
    removed, never read) and removed at the end."""
    import ray

    from harness.runner.pytest_plugin import CellWorker
    from harness.runner.store import Store

    started = time.perf_counter()
    node = ray.get_runtime_context().get_node_id()
    yield Started(socket.gethostname(), node)
    if Path(spec.rootdir).is_dir():  # a shared checkout; else the shipped working_dir
        os.chdir(spec.rootdir)
    folder = attempt_folder(spec)
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        options = replace(spec.options, results=folder / "cell.db", resume=False)
        collector = _ReportCollector()
        plugin_args = [arg for name in spec.plugins for arg in ("-p", name)]
        output = io.StringIO()
        # What is imported by now (torch, transformers, tunebench) out of the garbage
        # collector's reach for the rest of this one-cell process: pytest alone runs four
        # full collections when the session ends.
        gc.freeze()
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
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    yield CellResult(
        cell_id=spec.cell.id, exit_code=int(exit_code), output=output.getvalue()[-4000:],
        runs=runs, reports=collector.reports, host=socket.gethostname(), node=node,
        resources=dict(ray.get_runtime_context().get_assigned_resources()),
        seconds=time.perf_counter() - started,
    )


def lost_part(error: BaseException) -> str | None:
    """What a failed attempt lost, ``"worker"``, ``"node"`` or ``"result"``, when Ray counts the
    failure as a system failure (the kind its ``max_retries`` retries); ``None`` for an
    exception of the cell's own code, a cancellation or anything else (not retried)."""
    from ray import exceptions

    if isinstance(error, exceptions.RayTaskError):  # the task's code raised (even if what it
        return None                                 # raised was a Ray error of its own calls)
    if isinstance(error, exceptions.NodeDiedError):
        return "node"
    if isinstance(error, exceptions.ObjectLostError):  # the result's node died before the
        return "result"                                # driver fetched it
    if isinstance(error, (exceptions.WorkerCrashedError, exceptions.OutOfMemoryError)):
        return "worker"  # killed (the OOM killer, Ray's memory monitor, kill -9) or crashed
    return None


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
    """A pytest plugin that replaces the test loop with Ray tasks, one per cell (and one more
    per retry of a cell whose worker or node was lost)."""

    def __init__(self, config: pytest.Config, experiment: ExperimentSession) -> None:
        self.config = config
        self.experiment = experiment
        self.cpus: float = config.getoption("ray_cpus")
        self.gpus: float | None = config.getoption("ray_gpus")
        self.retries: int = config.getoption("ray_retries")
        if self.retries < 0:
            raise pytest.UsageError(
                f"--ray-retries={self.retries}: give how many times a cell whose worker or "
                "node is lost is submitted again, 0 or more (0: it fails, as any error does)")

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
        address = os.environ.get("RAY_ADDRESS", "")
        if address.startswith("ray://"):
            raise pytest.UsageError(
                f"--executor=ray: RAY_ADDRESS={address} is a Ray Client address, and Ray Client "
                "cannot run streaming tasks (num_returns='streaming'), which tell the driver "
                "where each attempt of a cell runs. Run the driver on a node of the cluster "
                "with RAY_ADDRESS=<head>:6379, the address `ray start --head` prints.")
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
                    "RAY_ADDRESS, or unset it to start a local instance. A cluster with token "
                    "authentication also needs RAY_AUTH_MODE=token and its token here "
                    "(RAY_AUTH_TOKEN_PATH, or the head's ~/.ray/auth_token copied to this "
                    "machine).") from None
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
        # A fresh worker process per attempt (max_calls=1): no pytest session, model or CUDA
        # memory left over from the previous cell. Ray retries nothing (max_retries=0): the
        # driver does, below, and counts.
        task = ray.remote(max_calls=1, num_returns="streaming")(run_cell)
        pending: dict[Any, Attempts] = {}

        def submit(attempts: Attempts) -> None:
            cell = attempts.cell
            items = cells[cell.id]
            spec = CellSpec(cell, experiment.options, [i.nodeid for i in items],
                            str(session.config.rootpath), _driver_plugins(session.config),
                            attempt=attempts.begin())
            generator = task.options(
                **self.resources(cell, cluster_gpus), max_retries=0,
                name=f"tunebench {cell.id} attempt {spec.attempt}").remote(spec)
            pending[generator] = attempts

        for items in cells.values():
            submit(Attempts(experiment.test_cells[items[0].nodeid]))
        write(f"tunebench: {len(pending)} cells submitted to Ray "
              f"({ray.cluster_resources().get('CPU', 0):g} CPUs, {cluster_gpus:g} GPUs)")
        done = failed = 0
        tries = self.retries + 1
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                attempts = pending[ready[0]]
                cell = attempts.cell
                try:
                    sent = ray.get(next(ready[0]))
                except Exception as error:  # the task raised, its worker or node died
                    del pending[ready[0]]
                    message = "".join(traceback.format_exception_only(error)).strip()
                    lost = lost_part(error)
                    if lost:
                        attempts.lost.append(f"attempt {attempts.count}: lost {lost}: "
                                             f"{message.splitlines()[0]}")
                    if lost and attempts.count < tries:
                        submit(attempts)
                        write(f"{_progress(done, len(cells), failed)}  retrying {cell.id} "
                              f"after a lost {lost} (attempt {attempts.count} of {tries})")
                        continue
                    if lost:
                        message += (f"\n(attempt {attempts.count} of {tries}: its {lost} was "
                                    f"lost and --ray-retries={self.retries} allows no more)")
                    self._fail(session, cells[cell.id], message, attempts)
                    ok, note = False, f"failed: {message.splitlines()[0]}"
                else:
                    if isinstance(sent, Started):
                        attempts.started(sent)
                        continue
                    del pending[ready[0]]
                    ok = self._gather(session, cells[cell.id], sent, attempts)
                    note = (f"{'finished' if ok else 'failed'} on {sent.host} in "
                            f"{sent.seconds:.1f} s")
                    if attempts.count > 1:
                        note += f" (attempt {attempts.count} of {tries})"
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

    def _cancel(self, ray: Any, pending: dict[Any, Attempts], reason: str) -> None:
        """Cancel the tasks not finished (their workers are killed) and record their runs
        ``interrupted`` with ``reason``."""
        for generator, attempts in pending.items():
            ray.cancel(generator, force=True)
            self._record(attempts, "interrupted", reason)

    def _gather(self, session: pytest.Session, items: list[pytest.Item],
                result: CellResult, attempts: Attempts) -> bool:
        """Import a finished task's rows and replay its reports; whether all passed."""
        experiment = self.experiment
        info = {"executor": {"name": "ray", "host": result.host, "node": result.node,
                             "resources": result.resources,
                             "task_seconds": round(result.seconds, 3), **attempts.info()}}
        ids = experiment.store.import_runs(result.runs, session=experiment.options.session,
                                           info=info)
        experiment.run_ids.extend(ids)
        plugins.pm.hook.on_runs_imported(store=experiment.store, run_ids=ids)
        if not result.runs and result.exit_code != 0:  # the task's pytest stopped early
            self._record(attempts, "failed", f"pytest exit {result.exit_code} on "
                                             f"{result.host}:\n{result.output}")
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

    def _record(self, attempts: Attempts, status: str, message: str) -> None:
        """A run of the cell closed with ``status`` and ``message``, for a cell whose task
        left no run of its own (it failed early, died or was cancelled)."""
        experiment = self.experiment
        cell = attempts.cell
        run_id = experiment.store.start_run(experiment.run_record(
            cell.approach, cell.seed, point=cell.point))
        experiment.store.update_info(run_id, {"executor": {"name": "ray", **attempts.info()}})
        experiment.store.finish_run(run_id, status, message)
        experiment.run_ids.append(run_id)
        plugins.pm.hook.on_runs_imported(store=experiment.store, run_ids=[run_id])

    def _fail(self, session: pytest.Session, items: list[pytest.Item], message: str,
              attempts: Attempts) -> None:
        """A task that raised, or whose worker or node was lost on its last attempt: its run
        is recorded failed with the error and each of its tests reports it."""
        self._record(attempts, "failed", message)
        for item in items:
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            item.ihook.pytest_runtest_logreport(report=_failed_report(item, message))
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _failed_report(item: pytest.Item, message: str) -> pytest.TestReport:
    return pytest.TestReport(item.nodeid, item.location, keywords={}, outcome="failed",
                             longrepr=message, when="setup")
