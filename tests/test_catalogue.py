"""The metric catalogue as the one source of directions and order, and the public import
surface plugin authors are told to use."""

import ast
import re
from pathlib import Path

import pytest

import harness
from harness.core import plugins
from harness.measure.catalogue import (
    BUILTIN,
    Catalogue,
    DuplicateMetricError,
    Metric,
    UnknownMetricError,
)
from harness.runner.session import ExperimentSession, Recorder, SessionOptions
from harness.runner.summary import session_table

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED = ["Approach", "Candidate", "LMCandidate", "RunContext", "option", "hookimpl",
              "TrainedApproach", "TrainingConfig", "TrainingResult", "Task", "TaskData",
              "Example", "Message", "Passage"]
"""The names docs/writing-a-plugin.md promises under ``from harness import``."""


def _literal_name(node: ast.expr) -> str | None:
    """A metric name written as a literal, ``f"base[{part}]"`` (its ``base``), or either
    inside the forgetting suite's ``name(metric, view)``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        head, tail = node.values[0], node.values[-1]
        if (isinstance(head, ast.Constant) and isinstance(tail, ast.Constant)
                and tail.value == "]"):
            return head.value.rstrip("[")
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "name" and node.args):
        return _literal_name(node.args[0])
    return None


def recorded_names() -> set[str]:
    """Literal metric names (f-string parts before any ``{``) the suites record."""
    names = set()
    for suite in (ROOT / "suites").glob("test_*.py"):
        for node in ast.walk(ast.parse(suite.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "metric" and node.args):
                found = _literal_name(node.args[0])
                if found:
                    names.add(found)
    return names


def test_every_literal_metric_a_suite_records_is_described():
    catalogue = plugins.metrics()
    names = recorded_names()
    assert {"accuracy", "items_fixed", "recall_at_k", "kl_to_base", "gen_accuracy"} <= names
    assert sorted(n for n in names if n not in catalogue) == []


def test_lookup_of_parts_and_lmeval_filters():
    catalogue = Catalogue(BUILTIN)
    assert catalogue.require("recall[positive]").name == "recall"
    assert catalogue.direction("forgetting_delta[arithmetic]") is True
    assert catalogue.direction("exact_match,strict-match[gsm8k]") is True
    assert catalogue.direction("word_perplexity[wikitext]") is False
    assert catalogue.direction("merged_latency_p95_ms") is False
    assert catalogue.headline()[:3] == ["accuracy", "macro_f1", "gen_accuracy"]
    assert catalogue.deciding()[:4] == ["accuracy", "gen_accuracy", "f1", "chrf"]
    with pytest.raises(UnknownMetricError, match="register_metrics"):
        catalogue.require("acuracy")
    with pytest.raises(DuplicateMetricError, match="'accuracy'"):
        catalogue.add(Metric("accuracy", False, "share", "the same name, another direction"))
    catalogue.add(next(m for m in BUILTIN if m.name == "accuracy"))  # the same entry again


def test_recorder_takes_the_direction_from_the_catalogue_and_refuses_unknown_metrics(
        tiny_model_dir, tmp_path):
    session = ExperimentSession(SessionOptions(
        approaches=["zero-shot"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", session="catalogue"))
    with session.open_run("zero-shot") as run:
        recorder = Recorder(session, run, "unit")
        recorder.metric("latency_p50_ms", 12.0)
        recorder.metric("accuracy", 0.75)
        with pytest.raises(UnknownMetricError, match="'made_up'"):
            recorder.metric("made_up", 1.0)
    rows = {r["name"]: r["higher_is_better"] for r in session.store.query(
        "SELECT name, higher_is_better FROM metrics WHERE suite = 'unit'")}
    costs = {r["name"] for r in session.store.query(
        "SELECT name FROM metrics WHERE suite = 'prepare'")}
    table = session_table(session.store, "catalogue", tmp_path / "r.db", session.metrics)
    session.close()
    assert rows == {"latency_p50_ms": 0, "accuracy": 1}  # nothing stored for made_up
    assert "prepare_seconds" in costs and costs <= {m.name for m in session.metrics.costs()}
    header = table.splitlines()[1].split()
    assert header.index("accuracy") < header.index("latency_p50_ms")  # headline ranks


def test_documented_public_names_import_from_harness():
    for name in DOCUMENTED:
        assert getattr(harness, name) is not None, name
    assert set(DOCUMENTED) <= set(harness.__all__)
    from harness.testing import check_approach, make_tiny_model

    assert callable(check_approach) and callable(make_tiny_model)
    with pytest.raises(AttributeError):
        harness.NotAName  # noqa: B018


@pytest.mark.parametrize("path", ["docs/writing-a-plugin.md", "docs/hooks.md",
                                  "examples/tunebench-top-layers/tunebench_top_layers/__init__.py"])
def test_plugin_docs_and_example_import_only_the_public_surface(path):
    text = (ROOT / path).read_text()
    imports = re.findall(r"^\s*from (harness[\w.]*) import ([^\n(]+)", text, flags=re.M)
    assert imports, f"{path} shows no harness import"
    for module, names in imports:
        assert module in ("harness", "harness.testing"), f"{path} imports from {module}"
        for name in (n.strip() for n in names.split("#")[0].split(",")):
            assert hasattr(__import__(module, fromlist=[name]), name), (path, name)
