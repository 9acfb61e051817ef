"""Shared fixtures: a tiny in-process model, and helpers that run the experiment runner.

Expensive things are built once per test run, not once per test or per xdist worker:
``built_once`` makes a folder under the run's shared temporary root, behind a file lock, so
whichever worker needs it first builds it and the other reads it; ``run_once`` is the same for
a runner session (its results file and its output). Tests read these; a test that changes one
works on its own copy (``copy_of``).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from harness.models.loading import load_model, resolve_model
from harness.testing import make_tiny_model
from tests.helpers.runner_server import Forked, RunnerServer

ROOT = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers"


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder every xdist worker of this test run sees (its own when alone)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], object]) -> Path:
    """Folder ``name``, filled by ``build(folder)`` once per test run and shared by workers.

    The xdist recipe for session fixtures ("Making session-scoped fixtures execute only
    once"): a file lock, and a marker written after the build, so a build that failed is
    tried again by the next test that asks rather than read half-made.
    """
    root = shared_root(tmp_path_factory)
    folder, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


def run_once(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str], *,
             env: Callable[[Path], dict[str, str | None]] | None = None,
             suites: list[str] | None = None, timeout: float = 600,
             ) -> tuple[Path, subprocess.CompletedProcess]:
    """``run_suites(args)`` in a folder of its own, once per test run (``built_once``).

    ``env(folder)`` gives the session's extra environment (e.g. a cache inside the folder).
    Returns the folder and the session's result, read back from the folder on every call.
    """
    def build(folder: Path) -> None:
        result = run_suites(args, folder, env=env(folder) if env else None, timeout=timeout,
                            suites=suites)
        (folder / "session.json").write_text(json.dumps(
            {"returncode": result.returncode, "stdout": result.stdout,
             "stderr": result.stderr}))

    folder = built_once(tmp_path_factory, name, build)
    saved = json.loads((folder / "session.json").read_text())
    return folder, subprocess.CompletedProcess(args, saved["returncode"], saved["stdout"],
                                               saved["stderr"])


def copy_of(folder: Path, destination: Path) -> Path:
    """A private copy of a shared folder, for a test that changes what it holds."""
    return Path(shutil.copytree(folder, destination, symlinks=True))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, one folder for every worker (so shared runs name one model path)."""
    return built_once(tmp_path_factory, "tiny-model", make_tiny_model)


@pytest.fixture(scope="session")
def smoke_comparison(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                     ) -> tuple[Path, subprocess.CompletedProcess]:
    """One smoke comparison over every suite on the tiny model, run once per test run:
    zero-shot, few-shot (k=2) and lora, mirrored to MLflow's default local store, with a cache
    of its own. The runner, export, MLflow and report tests read its folder (``r.db``,
    ``mlflow.db``, ``cache/``) and its output; none may change them (``copy_of``)."""
    return run_once(
        tmp_path_factory, "smoke-comparison",
        ["--approach=zero-shot,few-shot,lora", "--budget=smoke", f"--model={tiny_model_dir}",
         "--results=r.db", "--set", "few-shot.k=2", "--mlflow", "-v"],
        env=lambda folder: {"TUNEBENCH_CACHE": str(folder / "cache"),
                            "MLFLOW_TRACKING_URI": None, "MLFLOW_EXPERIMENT_NAME": None})


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path):
    return load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"), torch.float32)


def run_suites(
    args: list[str], cwd: Path, *, env: dict[str, str | None] | None = None,
    timeout: float = 600, suites: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """``python -m pytest suites/ ARGS`` in a new process, as a user would run it (forked by
    the runner server, so the process starts with torch and transformers already imported).

    ``suites`` names suite files (``["test_latency.py"]``) to run instead of all of them;
    ``env`` adds to this process's environment; a ``None`` value removes that variable.
    """
    return RUNNER_SERVER.finish(start_suites(args, cwd, env=env, suites=suites), timeout)


def start_suites(args: list[str], cwd: Path, *, env: dict[str, str | None] | None = None,
                 suites: list[str] | None = None) -> Forked:
    """``run_suites`` without waiting: the forked session, to signal, poll and wait for."""
    paths = [str(ROOT / "suites" / name) for name in suites or [""]]
    merged = {**os.environ, "PYTHONPATH": str(HELPERS), **(env or {})}
    environment = {key: value for key, value in merged.items() if value is not None}
    return RUNNER_SERVER.start([*paths, "-p", "no:cacheprovider", *args], cwd, environment)


RUNNER_SERVER = RunnerServer()
"""Forks each ``run_suites`` session from a process that has the heavy libraries imported
(tests/helpers/runner_server.py): a new process as before, without 3-5 s of imports each."""


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """No runner session outlives the test that started it (one that failed or stopped while
    its session ran leaves it running, to be killed here, not to compete for the cores)."""
    RUNNER_SERVER.kill_running()


def pytest_sessionfinish(session: pytest.Session) -> None:
    RUNNER_SERVER.close()


def query_db(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    """Rows of ``sql`` on the results database ``db`` (opened and closed for this query)."""
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def wait_while_running(process: subprocess.Popen | Forked, ready: Callable[[], bool], what: str,
                       timeout: float = 300) -> None:
    """Poll until ``ready()``; fail with the process's output if it ends first, or with
    ``what`` never happened after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _schedule_rank(item: pytest.Item) -> int:
    """Grouped tests first, then the other slow ones, then the fast ones (see below)."""
    if item.get_closest_marker("xdist_group"):
        return 0
    return 1 if item.get_closest_marker("slow") else 2


SHARED_RUN_GROUPS = {
    "smoke_comparison": "smoke-comparison",
    "measured": "measurement-suites",
    "sentiment_runs": "controls", "kbqa_runs": "controls", "prefs_runs": "controls",
    "installed": "external-plugin",
}
"""Fixtures that build a run once per test run (``run_once``/``built_once``), and the xdist
group of the tests that read them: one worker runs them one after another, so no worker sits
waiting on the file lock while the other builds the run."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Readers of a shared run join its group (``SHARED_RUN_GROUPS``); then longest work
    first, so no worker runs a long tail alone at the end.

    pytest-xdist hands out work in collection order (``make test`` passes
    ``--no-loadscope-reorder``); the long groups and end-to-end runs go first and the many
    short tests last, where they fill whichever worker is free: the longest-processing-time-
    first rule of list scheduling (Graham, 1969). Within a rank the order is unchanged, so a
    module's tests stay together.
    """
    for item in items:
        shared = [SHARED_RUN_GROUPS[name] for name in getattr(item, "fixturenames", ())
                  if name in SHARED_RUN_GROUPS]
        if shared and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(shared[0]))
    items.sort(key=_schedule_rank)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop a run whose ``xdist_group`` marks would be silently ignored.

    pytest-xdist's ``--dist loadgroup`` tells its scheduler a test's group by appending
    ``@group`` to the node id; where pytest does not let it (pytest 9.2 with pytest-xdist 3.8,
    pytest-xdist issue 1386) every group is split across workers and its shared fixtures
    (a Ray instance, the fault-injection story) are built on each.

    And what collection imported (torch, transformers, the project) goes out of the garbage
    collector's reach: the full collections during the tests then skip it.
    """
    gc.freeze()
    if not getattr(session.config.option, "loadgroup", False):
        return
    for item in session.items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            raise pytest.UsageError(
                f"{item.nodeid} is marked xdist_group, but pytest-xdist could not group it "
                "(pytest-xdist issue 1386 with pytest 9.2): install the versions in "
                "constraints.txt (make setup) or run without --dist loadgroup")
