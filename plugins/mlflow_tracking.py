"""``--mlflow``: every tunebench run mirrored into MLflow tracking as it happens.

A plugin on tunebench's run hooks (:mod:`harness.core.hookspecs`), registered for one pytest
session by ``--mlflow``; a W&B or trackio mirror would follow the same pattern. It follows
MLflow's tracking client API (``mlflow.MlflowClient``: every call names its run id, no fluent
active run, so nothing leaks between runs or nested sessions) and MLflow's own settings:
``MLFLOW_TRACKING_URI`` (else ``sqlite:///<results folder>/mlflow.db``, artifacts beside it in
``mlartifacts/``) and ``MLFLOW_EXPERIMENT_NAME`` (else one experiment per task,
``tunebench/<task>``, so the MLflow UI compares the approaches measured on one task).

One MLflow run per tunebench run, named like ``lora-seed0``; params: the approach config
(``approach.field``), task, model, seed, budget, precision, device, hashes, code and package
versions; every metric as it is recorded, by its catalogue name (``<suite>.<name>`` when two
suites of a run record the same name), with its CI and n as ``<name>_ci_low``,
``<name>_ci_high`` and ``<name>_n``; training curves by step (``train_loss``,
``validation_loss``); the candidate's numeric info at candidate ready; at the end the per-item
examples, one table artifact per suite (``examples/<suite>.json``), and the status.

MLflow failing (bad URI, server down) never costs a tunebench measurement: the first failure is
warned about once and mirroring stops; the results file keeps everything.

Runs measured elsewhere are mirrored whole from the results file: ``--executor=ray``'s driver
does it for each cell it imports (the ``on_runs_imported`` hook), and
:func:`log_results_file` does it for an existing results file (runs already in MLflow skipped).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

from harness.core.hookspecs import hookimpl
from harness.runner.store import RunRecord
from plugins.mlflow_records import (
    MAX_TAG_VALUE,
    ResultsReader,
    artifact_location,
    examples_tables,
    experiment_name,
    info_entries,
    key,
    log_batch,
    metric_values,
    run_name,
    run_params,
    stored_record,
    tracking_uri,
    value_text,
)

INSTALL_HINT = "pip install 'tunebench[mlflow]'"
STATUSES = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
"""tunebench run status -> MLflow run status."""
PROBE_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
"""While first reaching the tracking server: an unreachable one fails in seconds, not after
MLflow's minutes of retries. Later calls use MLflow's settings (or yours)."""


class MlflowUnavailable(ImportError):
    """MLflow's client (or what its SQLite store needs) is not installed."""


class MlflowTrackingWarning(UserWarning):
    """Mirroring into MLflow failed and stopped; the tunebench results are unaffected."""


def require_mlflow(uri: str) -> None:
    """Import MLflow's client; raise :class:`MlflowUnavailable` when it (or, for an
    ``sqlite:`` URI, SQLAlchemy or Alembic) is missing."""
    import importlib
    import importlib.util

    missing = []
    try:
        importlib.import_module("mlflow")
    except ImportError:
        missing.append("mlflow-skinny")
    if uri.startswith("sqlite:"):
        missing += [name for name in ("sqlalchemy", "alembic")
                    if importlib.util.find_spec(name) is None]
    if missing:
        raise MlflowUnavailable(f"MLflow tracking needs {', '.join(missing)}, not installed "
                                f"here: {INSTALL_HINT}")


def quiet_mlflow_logs() -> None:
    """MLflow's and Alembic's INFO lines (database creation, migrations) off; warnings stay."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_library_warnings() -> Iterator[None]:
    """MLflow's deprecation warnings about its own dependencies (SQLAlchemy's ``noload``,
    pandas' ``select_dtypes``) filtered: noise about MLflow's code, not the user's."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=r"mlflow(\.|$)")
        yield


@contextlib.contextmanager
def probe_settings() -> Iterator[None]:
    """:data:`PROBE_SETTINGS` in the environment (where MLflow reads them per request)."""
    saved = {name: os.environ.get(name) for name in PROBE_SETTINGS}
    os.environ.update(PROBE_SETTINGS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Mirror:
    """The MLflow run mirroring one tunebench run, and the metric keys it has."""

    id: str
    suite_of: dict[str, str] = field(default_factory=dict)
    """Metric key -> the suite that recorded it."""

    def metric_key(self, suite: str, name: str) -> str:
        """``name``; ``<suite>.<name>`` when another suite of the run recorded ``name``."""
        plain = key(name)
        if self.suite_of.setdefault(plain, suite) == suite:
            return plain
        return key(f"{suite}.{name}")


class MlflowTracker:
    """Mirrors runs into MLflow: ``@hookimpl`` methods for runs measured in this process,
    :meth:`log_stored` for runs read whole from a results database (a distributed executor's
    imported cells, or an existing results file)."""

    def __init__(self, results: Path, *, session: str | None = None,
                 uri: str | None = None) -> None:
        self.results = results
        self.session = session
        """Only runs of this tunebench session are mirrored live (``None``: every run)."""
        self.uri = uri or tracking_uri(results)
        self.failure: str | None = None
        self.logged: list[str] = []
        """MLflow run ids of the runs mirrored so far."""
        self.experiments: dict[str, str] = {}
        """Experiment name -> id."""
        self._client: Any = None
        self._open: dict[int, Mirror] = {}
        self._reader = ResultsReader(results)

    @property
    def client(self) -> Any:
        """The ``MlflowClient``; created, and the store reached once, on first use."""
        if self._client is None:
            from mlflow import MlflowClient

            quiet_mlflow_logs()
            with probe_settings():
                client = MlflowClient(tracking_uri=self.uri)
                client.search_experiments(max_results=1)
            self._client = client
        return self._client

    def experiment_id(self, task: str) -> str:
        from mlflow.exceptions import MlflowException

        name = experiment_name(task)
        if name not in self.experiments:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                try:
                    self.experiments[name] = self.client.create_experiment(
                        name, artifact_location=artifact_location(self.uri))
                    return self.experiments[name]
                except MlflowException:  # another process created it meanwhile
                    found = self.client.get_experiment_by_name(name)
                    if found is None:
                        raise
            if found.lifecycle_stage == "deleted":
                raise RuntimeError(
                    f"MLflow experiment {name!r} (id {found.experiment_id}) is deleted: restore "
                    "it (mlflow experiments restore) or set MLFLOW_EXPERIMENT_NAME")
            self.experiments[name] = found.experiment_id
        return self.experiments[name]

    def _safely(self, what: str, action: Callable[..., None], *args: Any) -> None:
        """``action(*args)``; the first failure warns once and stops mirroring."""
        if self.failure is not None:
            return
        try:
            with quiet_library_warnings():
                action(*args)
        except Exception as error:
            detail = value_text((str(error).strip().splitlines() or [""])[0], 240)
            self.failure = f"{what}: {type(error).__name__}: {detail}"
            with contextlib.suppress(Exception):  # e.g. -W error: still never fail the run
                warnings.warn(f"MLflow mirroring to {self.uri} stopped ({self.failure}); "
                              f"tunebench goes on and every result is in {self.results.resolve()}",
                              MlflowTrackingWarning, stacklevel=2)

    def _create(self, run_id: int, record: RunRecord, results: Path,
                start_time: int | None = None) -> str:
        tags = {"tunebench.run_id": str(run_id), "tunebench.session": record.session,
                "tunebench.results": str(results.resolve()), "tunebench.approach":
                record.approach, "tunebench.kind": record.kind or "",
                "tunebench.status": "running"}
        if record.sweep:
            tags["tunebench.sweep"] = value_text(dict(record.sweep), MAX_TAG_VALUE)
        run = self.client.create_run(self.experiment_id(record.task), start_time=start_time,
                                     tags=tags, run_name=run_name(record))
        mlflow_id = run.info.run_id
        log_batch(self.client, mlflow_id, params=run_params(record))
        whole = {f.name: getattr(record, f.name) for f in fields(record)}
        self.client.log_dict(mlflow_id, json.loads(json.dumps(whole, default=str)),
                             "tunebench/run.json")
        return mlflow_id

    def _finish(self, mirror: Mirror, run_id: int, reader: Any, status: str,
                end_time: int | None = None) -> None:
        for suite, table in examples_tables(reader, run_id).items():
            self.client.log_table(mirror.id, table, f"examples/{key(suite)}.json")
        rows = reader.query("SELECT error FROM runs WHERE id = ?", (run_id,))
        tags = {"tunebench.status": status}
        if rows and rows[0]["error"]:
            tags["tunebench.error"] = value_text(rows[0]["error"], MAX_TAG_VALUE)
        log_batch(self.client, mirror.id, tags=tags)
        if status in STATUSES:
            self.client.set_terminated(mirror.id, STATUSES[status], end_time=end_time)
        self.logged.append(mirror.id)

    def _log(self, run_id: int, values: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, step) for name, value in values.items()]
        log_batch(self.client, self._open[run_id].id, metrics=metrics)

    @hookimpl
    def on_run_started(self, run_id: int, record: RunRecord) -> None:
        if self.session is None or record.session == self.session:
            self._safely(f"starting run {run_id}", self._start, run_id, record)

    def _start(self, run_id: int, record: RunRecord) -> None:
        self._open[run_id] = Mirror(self._create(run_id, record, self.results))

    @hookimpl
    def on_train_log(self, run_id: int, step: int, split: str, name: str, value: float) -> None:
        if run_id in self._open:
            self._safely(f"logging a curve of run {run_id}", self._log, run_id,
                         {key(f"{split}_{name}"): float(value)}, int(step))

    @hookimpl
    def on_candidate_ready(self, candidate: Any, run: Any) -> None:
        mirror = self._open.get(run.id)
        if mirror is None:
            return
        numbers, tags = info_entries(candidate.info)
        fresh = {name: value for name, value in numbers.items() if name not in mirror.suite_of}
        self._safely(f"logging the candidate of run {run.id}", self._log, run.id, fresh)
        self._safely(f"logging the candidate of run {run.id}", lambda: log_batch(
            self.client, mirror.id, tags=tags))

    @hookimpl
    def on_metric_recorded(self, run: Any, metric: Mapping[str, Any]) -> None:
        mirror = self._open.get(run.id)
        if mirror is not None:
            name = mirror.metric_key(metric["suite"], metric["name"])
            self._safely(f"logging {name} of run {run.id}", self._log, run.id,
                         metric_values(name, metric))

    @hookimpl
    def on_run_finished(self, run_id: int, status: str) -> None:
        mirror = self._open.pop(run_id, None)
        if mirror is not None:
            self._safely(f"finishing run {run_id}", self._finish, mirror, run_id,
                         self._reader, status)

    @hookimpl
    def on_runs_imported(self, store: Any, run_ids: list[int]) -> None:
        for run_id in run_ids:
            self._safely(f"logging imported run {run_id}", self.log_stored, store, run_id)

    def log_stored(self, reader: Any, run_id: int) -> str:
        """Mirror a run read whole from a results database (``reader.query`` as
        :class:`ResultsReader` or :class:`~harness.runner.store.Store`): params, metrics with
        CIs, curves, candidate info, examples, status. Returns the MLflow run id; raises
        what MLflow raises."""
        from mlflow.entities import Metric

        row = reader.query("SELECT * FROM runs WHERE id = ?", (run_id,))[0]
        started = int(row["started_at"] * 1000)
        results = Path(getattr(reader, "path", self.results))
        mirror = Mirror(self._create(run_id, stored_record(row), results, start_time=started))
        metrics = []
        for stored in reader.query("SELECT * FROM metrics WHERE run_id = ? ORDER BY id",
                                   (run_id,)):
            name = mirror.metric_key(stored["suite"], stored["name"])
            values = metric_values(name, {"value": stored["value"], "low": stored["ci_low"],
                                          "high": stored["ci_high"], "n": stored["n"]})
            stamp = int(stored["recorded_at"] * 1000)
            metrics += [Metric(k, v, stamp, 0) for k, v in values.items()]
        for point in reader.query("SELECT step, split, name, value FROM curves WHERE run_id = ?"
                                  " ORDER BY id", (run_id,)):
            metrics.append(Metric(key(f"{point['split']}_{point['name']}"),
                                  float(point["value"]), started, int(point["step"])))
        numbers, tags = info_entries(json.loads(row["info_json"] or "{}"))
        metrics += [Metric(name, value, started, 0) for name, value in numbers.items()
                    if name not in mirror.suite_of]
        log_batch(self.client, mirror.id, metrics=metrics, tags=tags)
        ended = int(row["finished_at"] * 1000) if row["finished_at"] else None
        self._finish(mirror, run_id, reader, row["status"], end_time=ended)
        return mirror.id

    def mirrored(self, session: str, task: str) -> set[int]:
        """Runs of ``session`` (on ``task``) of this results file already mirrored whole:
        their MLflow run is no longer ``RUNNING``."""
        mark = "'" if "'" not in session else '"'  # MLflow's filters have no escapes
        found: set[int] = set()
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id(task)], f"tags.`tunebench.session` = {mark}{session}{mark}",
                max_results=1000, page_token=token)
            found.update(int(run.data.tags["tunebench.run_id"]) for run in page
                         if run.data.tags.get("tunebench.results") == str(self.results.resolve())
                         and run.info.status != "RUNNING")
            token = page.token
            if not token:
                return found

    def close(self) -> None:
        self._reader.close()


def log_results_file(db: Path, *, uri: str | None = None) -> list[str]:
    """Mirror the runs of the results database ``db`` not yet in MLflow (tracking URI and
    experiment as with ``--mlflow``, ``uri`` overriding), so running it again, or after a
    session with ``--mlflow``, adds nothing twice; returns the new MLflow run ids. Raises
    what MLflow raises: an explicit export should fail loudly."""
    if not db.is_file():
        raise FileNotFoundError(f"{db}: no such results database")
    tracker = MlflowTracker(db, uri=uri)
    require_mlflow(tracker.uri)
    reader = ResultsReader(db)
    try:
        with quiet_library_warnings():
            runs = reader.query("SELECT id, session, task FROM runs ORDER BY id")
            done = set().union(*(tracker.mirrored(session, task) for session, task in
                                 {(row["session"], row["task"]) for row in runs}))
            return [tracker.log_stored(reader, row["id"]) for row in runs
                    if row["id"] not in done]
    finally:
        reader.close()
        tracker.close()


class MlflowSession:
    """The pytest side of ``--mlflow``: registers a :class:`MlflowTracker` on tunebench's
    plugin manager for the session, says where the runs went, unregisters it at the end."""

    def __init__(self, tracker: MlflowTracker) -> None:
        self.tracker = tracker

    @classmethod
    def start(cls, results: Path, session: str) -> MlflowSession:
        """Raises :class:`MlflowUnavailable` (a usage error) when MLflow is missing."""
        from harness.core.plugins import pm

        tracker = MlflowTracker(results, session=session)
        require_mlflow(tracker.uri)
        pm.register(tracker)  # no fixed name: a nested session may add its own
        return cls(tracker)

    @pytest.hookimpl(trylast=True)  # after the tunebench results table
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tracker = self.tracker
        if tracker.failure is not None:
            terminalreporter.write_line(
                f"mlflow: mirroring stopped ({tracker.failure}); {len(tracker.logged)} runs "
                f"were logged to {tracker.uri}; every result is in {tracker.results.resolve()}",
                yellow=True)
        elif tracker.logged:
            browse = (f"mlflow ui --backend-store-uri {tracker.uri}"
                      if tracker.uri.startswith("sqlite:") else tracker.uri)
            terminalreporter.write_line(
                f"mlflow: {len(tracker.logged)} runs logged to {tracker.uri}, experiment "
                f"{', '.join(tracker.experiments)} (browse: {browse})")

    def pytest_unconfigure(self) -> None:
        from harness.core.plugins import pm

        if pm.is_registered(self.tracker):
            pm.unregister(self.tracker)
        self.tracker.close()
