"""Model cards (``README.md``) for trained candidates, following the Hugging Face model card spec.

A card is YAML front matter (the metadata fields of huggingface/hub-docs ``modelcard.md``:
``base_model``, ``library_name``, ``pipeline_tag``, ``tags``, ``datasets``, ``model-index`` with
``results: - task/dataset/metrics``), which ``huggingface_hub.ModelCard`` and ``metadata_load``
read, then Markdown: the measured results with their 95% CIs, forgetting, latency and cost
where measured, the training config, data hash, training time and cost, provenance, and how to
load the folder (``peft.PeftModel.from_pretrained`` for PEFT adapters,
``AutoModelForCausalLM.from_pretrained`` for full models).

A trained candidate is a cached folder whose manifest ``candidate.json`` holds the SHA-256 of
every file, and a reload refuses a folder with a file the manifest does not list
(``harness.train.trained.cache_problem``). So a card written into the folder is also entered
into the manifest: only into a folder that passes the check first (a tampered folder is
reported and left as it is, so the next run still retrains it), the card before the manifest,
each replaced atomically. A runner that verifies the folder between the two replacements sees
a mismatch and retrains rather than loading anything unchecked. With ``--out DIR`` the cards go
to ``DIR/<run-id>-<approach>/README.md`` and the cache is not touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness.models.loading import EMBEDDED_MODEL
from harness.train.houlsby import ADAPTER_TYPE
from harness.train.trained import MANIFEST, cache_problem
from reports import data
from reports.analysis import fmt
from reports.data import NoTrainedCandidates

CARD = "README.md"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub model the embedded default (a Q4_1 GGUF of it) was converted from."""
INDEX_METRICS = {"accuracy": ("accuracy", "accuracy (choice by log-likelihood)"),
                 "macro_f1": ("f1", "macro F1"),
                 "gen_accuracy": ("accuracy", "generation accuracy (greedy reply)"),
                 "exact_match": ("exact_match", "exact match"), "f1": ("f1", "token F1")}
"""tunebench metric -> (model-index metric ``type``, ``name``)."""
FORGETTING = ("forgetting_delta", "probe_accuracy", "probe_accuracy_base", "mcnemar_p",
              "nll_per_token_delta", "perplexity_delta", "forgetting_delta_raw",
              "interference_delta")
SERVING = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_ms",
           "decode_tokens_per_second", "serving_peak_memory_bytes", "cost_per_1k_requests",
           "train_cost")
TRAINING_INFO = ("train_seconds", "train_steps", "train_tokens", "train_tokens_per_second",
                 "stopped_early_at_step", "trainable_params", "total_params",
                 "trainable_percent", "artifact_bytes", "peak_memory_bytes")


class CardError(RuntimeError):
    """No card could be written for one candidate; the message says why."""


def base_model_id(model: str, model_version: str) -> str | None:
    """The base model's hub id when the run knows it: ``--model <hub id>`` (version
    ``hub:<id>``) or the embedded default; ``None`` for a local folder."""
    if model == EMBEDDED_MODEL:
        return EMBEDDED_HUB_ID
    return model_version.removeprefix("hub:") if model_version.startswith("hub:") else None


def dataset_id(task: str) -> str | None:
    """The task's hub dataset id when it is one (``--task hf:<owner>/<name>`` stores
    ``<owner>/<name>``; built-in task names and file names have no ``/``)."""
    return task if "/" in task else None


def artifact_kind(folder: Path) -> str:
    """``peft`` (an adapter_config.json with a ``peft_type``), ``houlsby`` (tunebench's own
    adapters), ``transformers`` (config.json and weights) or ``other``."""
    adapter = folder / "adapter_config.json"
    if adapter.is_file():
        try:
            config = json.loads(adapter.read_text())
        except ValueError:
            config = {}
        if isinstance(config, dict) and config.get("peft_type"):
            return "peft"
        if isinstance(config, dict) and config.get("adapter_type") == ADAPTER_TYPE:
            return "houlsby"
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return "transformers"
    return "other"


def _rows(metrics: pd.DataFrame, names: tuple[str, ...] | None = None,
          suite: str | None = None) -> list[dict[str, Any]]:
    rows = metrics if suite is None else metrics[metrics["suite"] == suite]
    if names is not None:
        rows = rows[rows["name"].isin(names)]
    return rows.to_dict("records")


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def front_matter(run: Mapping[str, Any], metrics: pd.DataFrame, kind: str) -> dict[str, Any]:
    """The card's metadata (YAML front matter) in the Hugging Face model card spec."""
    base = base_model_id(str(run["model"]), str(run["model_version"]))
    dataset = dataset_id(str(run["task"]))
    found = {row["name"]: row for row in _rows(metrics, tuple(INDEX_METRICS))}
    generation = "accuracy" not in found
    meta: dict[str, Any] = {}
    if base:
        meta["base_model"] = base
        meta["base_model_relation"] = "adapter" if kind in {"peft", "houlsby"} else "finetune"
    if kind in {"peft", "transformers"}:
        meta["library_name"] = kind
    meta["pipeline_tag"] = "text-generation"
    meta["tags"] = list(dict.fromkeys(["tunebench", *str(run["approach"]).split("+"),
                                       str(run["task"])]))
    if dataset:
        meta["datasets"] = [dataset]
    if found:
        meta["model-index"] = [{
            "name": f"{run['label']} on {run['task']} (tunebench run {run['run_id']})",
            "results": [{
                "task": {"type": "text-generation" if generation else "text-classification",
                         "name": str(run["task"])},
                "dataset": {"name": f"tunebench {run['task']} (data {run['data_hash'][:12]})",
                            "type": dataset or str(run["task"]), "split": "eval"},
                "metrics": [{"type": INDEX_METRICS[name][0], "value": float(row["value"]),
                             "name": INDEX_METRICS[name][1]}
                            for name, row in found.items()],
            }],
        }]
    return meta


def _fmt(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """``reports.analysis.fmt``, with small numbers (costs) to three significant digits."""
    if value is not None and 0 < abs(value) < 0.01 and low is None:
        return f"{value:.3g}"
    return fmt(value, low, high)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["| metric | value | 95% CI | n |", "|---|---|---|---|"]
    for row in rows:
        low, high = _number(row["ci_low"]), _number(row["ci_high"])
        ci = "-" if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"
        n = "-" if _number(row["n"]) is None else str(int(row["n"]))
        lines.append(f"| {row['name']} | {_fmt(_number(row['value']))} | {ci} | {n} |")
    return [*lines, ""]


def load_snippet(kind: str, folder: Path, base: str, approach: str) -> list[str]:
    """How to load the candidate, as Markdown."""
    code = {
        "peft": ["from peft import PeftModel",
                 "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                 f"base = AutoModelForCausalLM.from_pretrained({base!r})",
                 f"tokenizer = AutoTokenizer.from_pretrained({base!r})",
                 f"model = PeftModel.from_pretrained(base, {str(folder)!r})"],
        "transformers": ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                         f"model = AutoModelForCausalLM.from_pretrained({str(folder)!r})",
                         f"tokenizer = AutoTokenizer.from_pretrained({base!r})  "
                         "# training saved no tokenizer: the base model's"],
        "houlsby": ["from transformers import AutoModelForCausalLM, AutoTokenizer",
                    "from harness.train.houlsby import load_adapters  # tunebench", "",
                    f"model = AutoModelForCausalLM.from_pretrained({base!r})",
                    f"tokenizer = AutoTokenizer.from_pretrained({base!r})",
                    f"load_adapters(model, {str(folder)!r})  # Houlsby adapters, not PEFT"],
    }.get(kind)
    if code is None:
        return [f"This folder is restored by tunebench's `{approach}` approach (its "
                "`restore`); a session with the same options reloads it from the cache.", ""]
    return ["```python", *code, "```", ""]


def card_text(run: Mapping[str, Any], metrics: pd.DataFrame, *, folder: Path,
              manifest: Mapping[str, Any], info: Mapping[str, Any],
              packages: Mapping[str, Any], db: Path) -> str:
    """The whole README.md of one trained candidate."""
    kind = artifact_kind(folder)
    meta = front_matter(run, metrics, kind)
    base = meta.get("base_model") or str(run["model"])
    kind_text = run["kind"] if isinstance(run["kind"], str) else "trained"
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---",
             "", f"# {run['label']} on {run['task']}", "",
             f"A `{run['approach']}` candidate ({kind_text}) of `{base}`, trained "
             f"and measured by tunebench on the task `{run['task']}` (run {run['run_id']}, "
             f"session `{run['session']}`, budget `{run['budget']}`, seed {run['seed']}). "
             "Intervals are 95% bootstrap CIs over the evaluation items; n is the number of "
             "items.", ""]
    if str(run["model"]) == EMBEDDED_MODEL:
        lines += [f"The base weights were tunebench's embedded default: `{EMBEDDED_HUB_ID}` as "
                  "a Q4_1 GGUF, dequantized. Applied to the hub's own weights the result "
                  "differs slightly from what was measured.", ""]
    sections = [("Results", _rows(metrics, suite="accuracy")),
                ("Forgetting (general probes vs the base model)", _rows(metrics, FORGETTING)),
                ("Latency and cost", _rows(metrics, SERVING))]
    for title, rows in sections:
        if rows:
            lines += [f"## {title}", "", *_table(rows)]
    if not _rows(metrics, FORGETTING):
        lines += ["Forgetting was not measured (suites/test_forgetting.py).", ""]
    trained = [f"- {key}: {_fmt(_number(info[key]))}" for key in TRAINING_INFO
               if isinstance(info.get(key), int | float)]
    trained += [f"- training cost: {_fmt(_number(row['value']))} (suites/test_latency.py: "
                "train_seconds at the configured price per hour)"
                for row in _rows(metrics, ("train_cost",))]
    lines += ["## Training", "", f"- data hash (SHA-256 of the task data): `{run['data_hash']}`",
              f"- device: {run['device']}, precision: {run['precision']}", *trained, "",
              "Training config:", "", "```json",
              json.dumps(manifest.get("config", {}), indent=2, sort_keys=True, default=str),
              "```", "", "## How to load", "", *load_snippet(kind, folder, base,
                                                            str(run["approach"]))]
    files = manifest.get("sha256") or {}
    lines += ["## Provenance", "",
              f"- code version: `{run['code_version']}`, config hash: `{run['config_hash']}`",
              f"- base model version: `{run['model_version']}`",
              f"- results file: `{db}` (run id {run['run_id']})",
              f"- cache key: `{folder.name}`",
              f"- packages: {', '.join(f'{k} {v}' for k, v in sorted(packages.items()))}",
              *(f"- `{name}` SHA-256 `{digest}`" for name, digest in sorted(files.items())
                if name != CARD), ""]
    return "\n".join(lines)


def _replace(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` atomically (a temporary file beside the candidate
    folder, never inside it, then ``os.replace``)."""
    handle, name = tempfile.mkstemp(prefix=f".{target.parent.name}-card-",
                                    dir=target.parent.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_into_candidate(folder: Path, text: str) -> Path:
    """Write the card into the cached candidate ``folder`` and enter its SHA-256 into the
    manifest, so the folder still passes its check; ``CardError`` if it did not pass before."""
    problem = cache_problem(folder)
    if problem is not None:
        raise CardError(f"{folder} fails its checksum check ({problem}); no card written, so "
                        "the next run still sees the problem and retrains it")
    manifest = json.loads((folder / MANIFEST).read_text())
    body = text.encode("utf-8")
    manifest["sha256"][CARD] = hashlib.sha256(body).hexdigest()
    _replace(folder / CARD, body)
    _replace(folder / MANIFEST, json.dumps(manifest, indent=1, default=str).encode("utf-8"))
    return folder / CARD


def copy_name(run: Mapping[str, Any]) -> str:
    """``<run-id>-<approach label>``, safe as a folder name."""
    return f"{run['run_id']}-{re.sub(r'[^A-Za-z0-9_.+=-]+', '_', str(run['label']))}"


def trained_runs(conn: sqlite3.Connection) -> tuple[pd.DataFrame, dict[int, dict[str, Any]]]:
    """The candidates whose info names an ``artifact_dir``, and every candidate's info."""
    candidates = data.finished_candidates(conn)
    infos = data.run_json_field(conn, candidates["run_id"].astype(int).tolist(), "info")
    trained = candidates[[bool(infos[int(i)].get("artifact_dir"))
                          for i in candidates["run_id"]]]
    return trained, infos


def export(conn: sqlite3.Connection, db: Path, out: Path | None = None
           ) -> tuple[list[Path], list[str]]:
    """A card for every trained candidate of ``db``: into its folder, or with ``out`` into
    ``out/<run-id>-<approach>/README.md``. Returns the cards written and a note per candidate
    without one (folder gone, checksum problem). ``LookupError`` without runs,
    :class:`NoTrainedCandidates` (a ``LookupError``) without trained candidates,
    ``NotADirectoryError`` when ``out`` is a file."""
    if out is not None and out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; model-card writes one folder per "
                                 "candidate into it: give a folder path")
    with data.snapshot(conn):
        if data.run_count(conn) == 0:
            raise LookupError(f"{db} has no runs")
        trained, infos = trained_runs(conn)
        if trained.empty:
            raise NoTrainedCandidates(
                f"{db} has no trained candidates (finished runs whose info has an "
                "artifact_dir); run an approach that trains, e.g. --approach=lora")
        ids = trained["run_id"].astype(int).tolist()
        long = data.metrics(conn, run_ids=ids, latest_only=False)
        packages = data.run_json_field(conn, ids, "packages")
    written, skipped = [], []
    for run in trained.to_dict("records"):
        run_id = int(run["run_id"])
        folder = Path(infos[run_id]["artifact_dir"])
        what = f"run {run_id} ({run['label']} on {run['task']})"
        if not (folder / MANIFEST).is_file():
            skipped.append(f"{what}: its candidate folder {folder} is gone (cache cleaned or "
                           "moved); no card")
            continue
        text = card_text(run, long[long["run_id"] == run_id], folder=folder,
                         manifest=json.loads((folder / MANIFEST).read_text()),
                         info=infos[run_id], packages=packages[run_id], db=db.resolve())
        if out is None:
            try:
                written.append(write_into_candidate(folder, text))
            except CardError as error:
                skipped.append(f"{what}: {error}")
            continue
        target = out / copy_name(run) / CARD
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written, skipped
