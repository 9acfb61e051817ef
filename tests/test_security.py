"""Security basics (issue 16): what the harness loads, and what it never runs.

Each test here proves one guarantee stated in README.md, "Security": weights are read as
safetensors or with ``torch.load(weights_only=True)``; a model's own Python code runs only
with ``--trust-remote-code``; task and corpus paths are read as data, never executed; the
dashboard opens the results database through one read-only connection.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.data.records import DataError
from harness.models.loading import (
    EMBEDDED_MODEL,
    EMBEDDED_WHEEL,
    ModelLoadError,
    load_model,
    resolve_model,
)
from harness.retrieval.chunking import load_corpus
from harness.runner.session import ExperimentSession, SessionOptions
from tests.conftest import ROOT, run_suites

CPU = torch.device("cpu")


def marker_script(marker: Path) -> str:
    """Python that leaves ``marker`` behind if it is ever executed or imported."""
    return f"from pathlib import Path\nPath({str(marker)!r}).write_text('executed')\n"


def copy_model(tiny_model_dir: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    return folder


def with_pickled_weights(folder: Path, extra: object = None) -> Path:
    """Replace the folder's safetensors by a ``pytorch_model.bin`` pickle of the same tensors
    (what ``save_pretrained(safe_serialization=False)`` wrote before transformers 5 dropped
    it), with ``extra`` pickled beside them if given."""
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    if extra is not None:
        state["extra"] = extra
    torch.save(state, folder / "pytorch_model.bin")
    return folder


class LeavesMarker:
    """Unpickling this touches a file: the code a malicious pickle would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def with_remote_code(folder: Path, marker: Path) -> Path:
    """Make the folder's config map the model to Python code shipped in the folder (a Hub
    model with ``auto_map``), code that leaves ``marker`` when it runs."""
    (folder / "custom_model.py").write_text(marker_script(marker) + (
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'tunebench-custom'\n"
        "class CustomModel(LlamaForCausalLM):\n    config_class = CustomConfig\n"))
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="tunebench-custom", architectures=["CustomModel"], auto_map={
        "AutoConfig": "custom_model.CustomConfig",
        "AutoModelForCausalLM": "custom_model.CustomModel"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# ------------------------------------------------------------------ weights: no unpickling
def test_pickled_weights_load_with_weights_only(tiny_model_dir, tmp_path):
    folder = with_pickled_weights(copy_model(tiny_model_dir, tmp_path / "bin"))
    model, _ = load_model(resolve_model(str(folder)), CPU, torch.float32)
    reference, _ = load_model(resolve_model(str(tiny_model_dir)), CPU, torch.float32)
    ids = torch.tensor([[5, 6, 7]])
    assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_pickled_weights_that_would_run_code_are_refused(tiny_model_dir, tmp_path):
    marker = tmp_path / "unpickled"
    folder = with_pickled_weights(copy_model(tiny_model_dir, tmp_path / "bin"),
                                  LeavesMarker(marker))
    with pytest.raises(ModelLoadError, match=r"weights_only=True\).*safetensors"):
        load_model(resolve_model(str(folder)), CPU, torch.float32)
    assert not marker.exists()


def test_the_converted_default_loads_from_safetensors_only(tiny_model_dir, tmp_path,
                                                           monkeypatch):
    """A ``.bin`` planted in tunebench's own cache folder is never read."""
    import importlib.metadata

    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path))
    version = importlib.metadata.version(EMBEDDED_WHEEL)
    cached = tmp_path / "models" / f"{EMBEDDED_MODEL}-{version}"
    with_pickled_weights(copy_model(tiny_model_dir, cached))
    spec = resolve_model(EMBEDDED_MODEL)
    assert spec.source == str(cached) and spec.safetensors_only
    with pytest.raises(ModelLoadError, match=r"no file named model\.safetensors"):
        load_model(spec, CPU, torch.float32)


def test_no_module_unpickles():
    """Every read of stored objects goes through safetensors, JSON, SQLite or a loader with
    pickling off: no module calls pickle, allows it in numpy, or calls torch.load without
    weights_only=True."""
    unpickling = re.compile(r"\bpickle\.loads?\(|allow_pickle\s*=\s*True|"
                            r"torch\.load\((?![^)]*weights_only\s*=\s*True)")
    for folder in ("harness", "plugins", "reports", "suites"):
        for module in sorted((ROOT / folder).rglob("*.py")):
            found = unpickling.search(module.read_text())
            assert not found, f"{module}: {found.group(0)}"


# ------------------------------------------------------------------ a model's own code
def test_model_code_is_refused_without_trust_remote_code(tiny_model_dir, tmp_path):
    marker = tmp_path / "model-code-ran"
    folder = with_remote_code(copy_model(tiny_model_dir, tmp_path / "custom"), marker)
    spec = resolve_model(str(folder))
    assert spec.trust_remote_code is False
    with pytest.raises(ModelLoadError, match=r"auto_map.*pass --trust-remote-code"):
        load_model(spec, CPU, torch.float32)
    assert not marker.exists()


@pytest.mark.slow  # two runs of the runner in subprocesses
def test_trust_remote_code_option_is_off_unless_given(tiny_model_dir, tmp_path):
    marker = tmp_path / "model-code-ran"
    folder = with_remote_code(copy_model(tiny_model_dir, tmp_path / "custom"), marker)
    env = {"TUNEBENCH_CACHE": str(tmp_path / "cache"),
           "HF_MODULES_CACHE": str(tmp_path / "hf-modules")}  # where transformers copies code
    args = ["--approach=zero-shot", "--budget=smoke", f"--model={folder}", "--results=r.db",
            "-q", "-x"]
    refused = run_suites(args, tmp_path, env=env, suites=["test_accuracy.py"])
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "pass --trust-remote-code" in refused.stdout
    assert not marker.exists()
    trusted = run_suites([*args, "--trust-remote-code"], tmp_path, env=env,
                         suites=["test_accuracy.py"])
    assert marker.exists(), trusted.stdout + trusted.stderr  # the option reaches the loader


# ------------------------------------------------------------------ data paths are data
def test_a_python_file_as_the_task_is_refused_as_data(tmp_path):
    marker = tmp_path / "task-ran"
    script = tmp_path / "task.py"
    script.write_text(marker_script(marker))
    with pytest.raises(DataError, match=r"task\.py: unsupported file type '\.py'"):
        ExperimentSession(SessionOptions(approaches=["zero-shot"], task=str(script),
                                         budget="smoke", results=tmp_path / "r.db"))
    assert not marker.exists()


def test_a_python_file_as_the_corpus_is_refused_as_data(tiny_model_dir, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "corpus-ran"
    script = tmp_path / "corpus.py"
    script.write_text(marker_script(marker))
    session = ExperimentSession(SessionOptions(
        approaches=["rag"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", overrides=[f"rag.corpus={script}", "rag.retriever=bm25"]))
    with pytest.raises(DataError, match=r"corpus\.py: unsupported file type '\.py' for "
                       r"rag\.corpus"), session.open_run("rag"):
        pass
    session.close()
    assert not marker.exists()


def test_a_corpus_folder_reads_only_text_files(tmp_path):
    marker = tmp_path / "corpus-ran"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("# Badges\nBadges are blue.")
    (tmp_path / "docs" / "setup.py").write_text(marker_script(marker))
    assert [p.id for p in load_corpus(str(tmp_path / "docs"))] == ["notes.md"]
    assert not marker.exists()


# ------------------------------------------------------------------ the dashboard only reads
def test_the_dashboard_connects_only_through_the_read_only_data_layer():
    """reports/data.py opens the database with mode=ro and query_only
    (tests/test_reports_data.py::test_connection_is_read_only shows writes fail); no other
    dashboard module opens it another way. reports/sample.py writes the demo database and is
    no part of the app."""
    openers = re.compile(r"sqlite3\.connect\(|\bStore\(")
    for module in sorted((ROOT / "reports").rglob("*.py")):
        if module.name in ("data.py", "sample.py"):
            continue
        assert not openers.search(module.read_text()), f"{module} opens the database itself"
