"""Export each candidate's results as an lm-evaluation-harness results file.

The layout is what lm-eval 0.4 writes (``lm_eval.evaluator.simple_evaluate`` builds the dict,
``lm_eval.result_schema.EvalResults`` describes it, and
``lm_eval.loggers.evaluation_tracker.EvaluationTracker.save_results_aggregated`` names the
file ``<out>/<model_name_sanitized>/results_<date>.json``), so lm-eval's own result handling
(``lm_eval.utils.make_table``, ``get_results_filenames``, ``get_latest_filename``) and tools
that read lm-eval output read these files too.

One file per candidate: the latest finished run of each approach per task/model/budget/seed
(:func:`reports.data.finished_candidates`). The task's headline metric becomes lm-eval's key
with the ``none`` filter: ``accuracy`` (choice by log-likelihood, lm-eval's multiple-choice
protocol) -> ``acc,none``; ``gen_accuracy`` (greedy reply scored by the task) ->
``exact_match,none``. Its ``_stderr`` is lm-eval's own standard error of a mean of 0/1 item
scores (``lm_eval.api.metrics.mean_stderr``: sample standard deviation / sqrt(n), i.e.
sqrt(p(1-p)/(n-1))), computed from the stored value and n, not from tunebench's bootstrap CI.

Everything else tunebench measured stays out of ``results`` (so no lm-eval reader mistakes it
for a task metric) and goes under a top-level ``"tunebench"`` block: every stored metric with
its value, 95% CI, n and direction, the headline's mapping, the run and its provenance.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from lm_eval.utils import sanitize_model_name

from reports import data

SCHEMA_VERSION = 1
"""Version of the ``"tunebench"`` block's layout."""
LMEVAL_KEYS = {"accuracy": ("acc", "multiple_choice"),
               "gen_accuracy": ("exact_match", "generate_until")}
"""tunebench headline metric -> (lm-eval metric name, lm-eval output_type), best first."""
FILTER = "none"
STDERR_SOURCE = ("lm-eval's mean_stderr of 0/1 item scores, sqrt(p*(1-p)/(n-1)), from the "
                 "stored value and n")


def finite(value: Any) -> Any:
    """``value`` as plain JSON: NaN/inf and missing numbers become ``None``."""
    if value is None:
        return None
    if isinstance(value, float) or hasattr(value, "item"):
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, float) and not math.isfinite(value):
            return None
    return value


def mean_stderr(value: float, n: int) -> float | str:
    """lm-eval's standard error of a mean of ``n`` 0/1 scores averaging ``value`` (``"N/A"``
    for fewer than two items, as lm-eval writes it)."""
    if n < 2:
        return "N/A"
    return math.sqrt(max(value * (1 - value), 0.0) * n / (n - 1)) / math.sqrt(n)


def _metric_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    low, high = finite(row["ci_low"]), finite(row["ci_high"])
    extra = row.get("extra_json")
    try:
        parsed = json.loads(extra or "{}")
    except ValueError:
        parsed = {}
    hib = finite(row["higher_is_better"])
    return {"value": finite(row["value"]),
            "ci95": [low, high] if low is not None and high is not None else None,
            "n": None if finite(row["n"]) is None else int(row["n"]),
            "higher_is_better": None if hib is None else bool(hib),
            **({"extra": parsed} if parsed else {})}


def headline(metrics: pd.DataFrame) -> pd.Series | None:
    """The row of the candidate's headline metric (accuracy, else gen_accuracy)."""
    for name in LMEVAL_KEYS:
        rows = metrics[metrics["name"] == name]
        if not rows.empty:
            return rows.iloc[-1]
    return None


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None or pd.isna(stamp) else dt.datetime.fromtimestamp(
        float(stamp), tz=dt.UTC).isoformat()


def lm_eval_results(run: Mapping[str, Any], metrics: pd.DataFrame, *, config: Mapping[str, Any],
                    info: Mapping[str, Any], packages: Mapping[str, Any],
                    results_file: Path) -> dict[str, Any] | None:
    """The lm-eval results dict of one candidate run (``None`` without a headline metric)."""
    top = headline(metrics)
    if top is None:
        return None
    task, label, run_id = str(run["task"]), str(run["label"]), int(run["run_id"])
    metric, output_type = LMEVAL_KEYS[str(top["name"])]
    value, n = float(top["value"]), int(top["n"]) if finite(top["n"]) is not None else 0
    shots = config.get("k") if "few-shot" in str(run["approach"]).split("+") else 0
    shots = shots if isinstance(shots, int) else 0
    model_name = f"{run['model']}/{label}-run{run_id}"
    version = f"data:{str(run['data_hash'])[:12]}"
    started, finished = finite(run["started_at"]), finite(run["finished_at"])
    suites: dict[str, dict[str, Any]] = {}
    for row in metrics.to_dict("records"):
        suites.setdefault(str(row["suite"]), {})[str(row["name"])] = _metric_entry(row)
    return {
        "results": {task: {"name": task, "alias": task, "sample_len": n,
                           f"{metric},{FILTER}": value,
                           f"{metric}_stderr,{FILTER}": mean_stderr(value, n)}},
        "group_subtasks": {task: []},
        "configs": {task: {
            "task": task, "task_alias": task, "output_type": output_type,
            "num_fewshot": shots,
            "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"version": version, "source": "tunebench", "tunebench_task": task,
                         "tunebench_metric": str(top["name"]), "data_hash": run["data_hash"]}}},
        "versions": {task: version},
        "n-shot": {task: shots},
        "higher_is_better": {task: {metric: True}},
        "n-samples": {task: {"original": n, "effective": n}},
        "config": {
            "model": "tunebench", "model_args": {"pretrained": run["model"], "approach": label,
                                                 "run_id": run_id},
            "model_num_parameters": finite(info.get("total_params")),
            "model_dtype": run["precision"], "batch_size": None, "batch_sizes": [],
            "device": run["device"], "use_cache": None, "limit": None, "bootstrap_iters": 0,
            "gen_kwargs": None, "random_seed": int(run["seed"]), "numpy_seed": int(run["seed"]),
            "torch_seed": int(run["seed"]), "fewshot_seed": int(run["seed"])},
        "git_hash": str(run["code_version"]).removeprefix("git:"),
        "date": started,
        "transformers_version": packages.get("transformers"),
        "lm_eval_version": packages.get("lm_eval"),
        "upper_git_hash": None,
        "model_source": "tunebench",
        "model_name": model_name,
        "model_name_sanitized": sanitize_model_name(model_name),
        "system_instruction": None, "system_instruction_sha": None,
        "fewshot_as_multiturn": None, "chat_template": None, "chat_template_sha": None,
        "task_hashes": {task: run["data_hash"]},
        "total_evaluation_time_seconds": (None if started is None or finished is None
                                          else str(finished - started)),
        "tunebench": {
            "schema": SCHEMA_VERSION,
            "headline": {"metric": str(top["name"]), "lm_eval_key": f"{metric},{FILTER}",
                         "stderr_source": STDERR_SOURCE, **_metric_entry(top.to_dict())},
            "metrics": suites,
            "run": {"id": run_id, "session": run["session"], "approach": run["approach"],
                    "label": label, "kind": run["kind"], "task": task, "model": run["model"],
                    "seed": int(run["seed"]), "budget": run["budget"],
                    "sweep": data.parse_sweep(run["sweep_json"]),
                    "started_at": _iso(started), "finished_at": _iso(finished)},
            "provenance": {"config": dict(config), "config_hash": run["config_hash"],
                           "data_hash": run["data_hash"], "model_version": run["model_version"],
                           "code_version": run["code_version"], "packages": dict(packages),
                           "device": run["device"], "precision": run["precision"],
                           "host": run["host"], "results_file": str(results_file),
                           "run_id": run_id},
            "info": {key: finite(value) for key, value in info.items()},
        },
    }


def results_path(out: Path, results: Mapping[str, Any], finished_at: float) -> Path:
    """Where lm-eval would write it: ``<out>/<model_name_sanitized>/results_<date>.json``,
    the date being the run's end in lm-eval's form (ISO with ``-`` for ``:``)."""
    date_id = dt.datetime.fromtimestamp(finished_at).isoformat().replace(":", "-")
    return out / results["model_name_sanitized"] / f"results_{date_id}.json"


def export(conn: sqlite3.Connection, db: Path, out: Path) -> tuple[list[Path], list[str]]:
    """Write one results file per candidate of ``db`` under the folder ``out``; returns the
    files written and a note per candidate skipped. ``LookupError`` without finished runs,
    ``NotADirectoryError`` when ``out`` is a file."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; lm-eval-json writes a folder of "
                                 "results files: give a folder path")
    with data.snapshot(conn):
        if data.run_count(conn) == 0:
            raise LookupError(f"{db} has no runs")
        candidates = data.finished_candidates(conn)
        if candidates.empty:
            raise LookupError(f"{db} has no finished runs")
        ids = candidates["run_id"].astype(int).tolist()
        long = data.metrics(conn, run_ids=ids, latest_only=False)
        configs = data.run_json_field(conn, ids, "config")
        infos = data.run_json_field(conn, ids, "info")
        packages = data.run_json_field(conn, ids, "packages")
    written, skipped = [], []
    for run in candidates.to_dict("records"):
        run_id = int(run["run_id"])
        results = lm_eval_results(run, long[long["run_id"] == run_id], config=configs[run_id],
                                  info=infos[run_id], packages=packages[run_id],
                                  results_file=db.resolve())
        if results is None:
            skipped.append(f"run {run_id} ({run['label']} on {run['task']}): no accuracy or "
                           "gen_accuracy recorded, nothing to put under lm-eval's results")
            continue
        path = results_path(out, results, float(run["finished_at"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False)
                        + "\n", encoding="utf-8")
        written.append(path)
    return written, skipped
