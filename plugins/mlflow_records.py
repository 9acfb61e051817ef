"""What a tunebench run becomes in MLflow, and reading stored runs back for it.

The mapping :mod:`plugins.mlflow_tracking` logs with: where (``MLFLOW_TRACKING_URI``, else
``sqlite:///<results folder>/mlflow.db``; ``MLFLOW_EXPERIMENT_NAME``, else ``tunebench/<task>``),
names (run names like ``lora-seed0``, metric keys MLflow accepts, the CI and n as
``<name>_ci_low``/``_ci_high``/``_n``), params within MLflow's length limits
(``mlflow.utils.validation``), batches within ``log_batch``'s limits, and a read-only view of a
results file for mirroring runs measured elsewhere. MLflow itself is imported only where a
call needs its entity classes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from harness.runner.matrix import point_label
from harness.runner.store import RunRecord, open_read_only

MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
"""MLflow's length limits (``mlflow.utils.validation``: ``MAX_PARAM_VAL_LENGTH``,
``MAX_TAG_VAL_LENGTH``, ``MAX_ENTITY_KEY_LENGTH``); longer values are cut, and the whole
record is kept in the run's ``tunebench/run.json`` artifact."""
BATCH = {"metrics": 1000, "params": 100, "tags": 100, "total": 1000}
"""MLflow's ``log_batch`` limits per call."""


def tracking_uri(results: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else an SQLite store beside the results file."""
    given = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if given:
        return given
    return f"sqlite:///{quote(str(results.resolve().parent / 'mlflow.db'))}"


def experiment_name(task: str) -> str:
    """``MLFLOW_EXPERIMENT_NAME`` when set, else ``tunebench/<task>``."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or f"tunebench/{task}"


def artifact_location(uri: str) -> str | None:
    """Artifacts of experiments created in a local SQLite store go beside the database
    (``mlartifacts/``); other stores keep their own default."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(unquote(uri[len("sqlite:///"):])).resolve().parent / "mlartifacts").as_uri()


def key(name: str) -> str:
    """``name`` as a valid MLflow metric/param key: ``recall[negative]`` -> ``recall_negative``
    (letters, digits, ``_ - . /`` and spaces; no empty, ``.`` or ``..`` path segments)."""
    text = re.sub(r"[^\w.\- /]+", "_", name).strip("_ ")
    segments = [s.strip() for s in text.split("/") if s.strip() not in ("", ".", "..")]
    return "/".join(segments)[:MAX_KEY] or "_"


def value_text(value: Any, limit: int = MAX_PARAM_VALUE) -> str:
    """A param or tag value: strings as they are, the rest as JSON; cut to ``limit``."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"lora": {"r": 8}}`` -> ``{"lora.r": 8}``."""
    flat: dict[str, Any] = {}
    for name, value in mapping.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def run_params(record: RunRecord) -> dict[str, str]:
    """A run's MLflow params: its approach config by ``approach.field`` (a composition's config
    is already by part) and what else identifies it."""
    config = record.config if "+" in record.approach else {record.approach: record.config}
    params = {
        **flatten(config), "approach": record.approach, "task": record.task,
        "model": record.model, "model_version": record.model_version, "seed": record.seed,
        "budget": record.budget, "precision": record.precision, "device": record.device,
        "data_hash": record.data_hash, "config_hash": record.config_hash,
        "code_version": record.code_version,
        **{f"package.{name}": version for name, version in record.packages.items()},
    }
    return {key(name): value_text(value) for name, value in params.items()}


def run_name(record: RunRecord) -> str:
    """``lora-seed0``, ``dpo[beta=0.3]-seed1``, ``lora-n64-seed0`` (a data-efficiency run),
    ``lora-noise0.2-seed0`` (a label-noise run)."""
    size, noise = record.config.get("train_examples"), record.config.get("label_noise")
    return (f"{point_label(record.approach, record.sweep)}"
            f"{f'-n{size}' if size is not None else ''}"
            f"{f'-noise{noise:g}' if noise else ''}-seed{record.seed}")


def metric_values(name: str, metric: Mapping[str, Any]) -> dict[str, float]:
    """A recorded metric as MLflow metrics: ``name`` and, when known, its CI bounds and n."""
    values = {name: metric["value"], f"{name}_ci_low": metric.get("low"),
              f"{name}_ci_high": metric.get("high"), f"{name}_n": metric.get("n")}
    return {k: float(v) for k, v in values.items() if v is not None}


def info_entries(info: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """A candidate's info: numbers as metrics, other set values as ``info.*`` tags."""
    numbers, tags = {}, {}
    for name, value in info.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[key(name)] = float(value)
        elif value is not None:
            tags[f"info.{key(name)}"] = value_text(value, MAX_TAG_VALUE)
    return numbers, tags


def stored_record(row: Mapping[str, Any]) -> RunRecord:
    """The :class:`RunRecord` of a ``runs`` row."""
    return RunRecord(
        session=row["session"], approach=row["approach"], task=row["task"],
        model=row["model"], seed=row["seed"], budget=row["budget"],
        config=json.loads(row["config_json"]), config_hash=row["config_hash"],
        data_hash=row["data_hash"], model_version=row["model_version"],
        code_version=row["code_version"], packages=json.loads(row["packages_json"]),
        device=row["device"], precision=row["precision"], kind=row["kind"],
        sweep=json.loads(row["sweep_json"] or "{}"),
    )


class ResultsReader:
    """Read-only queries on a results database (``mode=ro``: the runner keeps writing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if self._db is None:
            self._db = open_read_only(self.path)
            self._db.row_factory = sqlite3.Row
        return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def examples_tables(reader: Any, run_id: int) -> dict[str, dict[str, list[Any]]]:
    """A run's per-item examples, one column-wise table per suite."""
    columns = ("item_id", "prompt", "prediction", "reference", "correct", "score",
               "latency_ms", "extra")
    tables: dict[str, dict[str, list[Any]]] = {}
    for row in reader.query(
            "SELECT suite, item_id, prompt, prediction, reference, correct, score, latency_ms, "
            "extra_json AS extra FROM examples WHERE run_id = ? ORDER BY id", (run_id,)):
        table = tables.setdefault(row["suite"], {column: [] for column in columns})
        for column in columns:
            table[column].append(row[column])
    return tables


def log_batch(client: Any, run_id: str, *, metrics: Sequence[Any] = (),
              params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None,
              ) -> None:
    """``client.log_batch`` in chunks within MLflow's per-call limits."""
    from mlflow.entities import Param, RunTag

    pending = deque([("metrics", m) for m in metrics]
                    + [("params", Param(k, v)) for k, v in (params or {}).items()]
                    + [("tags", RunTag(k, v)) for k, v in (tags or {}).items()])
    while pending:
        chunk: dict[str, list[Any]] = {"metrics": [], "params": [], "tags": []}
        for _ in range(BATCH["total"]):
            if not pending or len(chunk[pending[0][0]]) == BATCH[pending[0][0]]:
                break
            kind, entity = pending.popleft()
            chunk[kind].append(entity)
        client.log_batch(run_id, **chunk)
