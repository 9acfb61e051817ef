"""Shared fixtures: a tiny in-process model, and a helper that runs the experiment runner."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from harness.models.loading import load_model, resolve_model
from harness.testing import make_tiny_model

ROOT = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path):
    return load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"), torch.float32)


def run_suites(
    args: list[str], cwd: Path, *, env: dict[str, str | None] | None = None,
    timeout: float = 600, suites: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """``python -m pytest suites/ ARGS`` in a fresh process, as a user would run it.

    ``suites`` names suite files (``["test_latency.py"]``) to run instead of all of them;
    ``env`` adds to this process's environment; a ``None`` value removes that variable.
    """
    paths = [str(ROOT / "suites" / name) for name in suites or [""]]
    merged = {**os.environ, "PYTHONPATH": str(HELPERS), **(env or {})}
    environment = {key: value for key, value in merged.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "pytest", *paths, "-p", "no:cacheprovider", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout,
    )


def query_db(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    """Rows of ``sql`` on the results database ``db`` (opened and closed for this query)."""
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def wait_while_running(process: subprocess.Popen, ready: Callable[[], bool], what: str,
                       timeout: float = 300) -> None:
    """Poll until ``ready()``; fail with the process's output if it ends first, or with
    ``what`` never happened after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
