"""Positive and negative controls (plugins/controls.py): each suite must detect a known effect.

A measurement is trusted once a control shows it detects the effect it claims to measure.
The suites run as a user runs them (``pytest suites/`` in a subprocess, smoke budget, results
read back from the SQLite store); each control has an assertion that fails if its suite stops
detecting the control's effect. The forgetting control needs a base that knows something, so
a tiny model is first taught the smoke probes (tests/helpers/knowing_model.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.overrides import OverrideError
from harness.core.plugins import approaches
from harness.measure.overfitting import VERDICT_CODES
from harness.runner.session import ExperimentSession, SessionOptions
from plugins.controls import CONTROLS, RandomCandidate
from tests.conftest import built_once, query_db, run_once
from tests.helpers.knowing_model import make_knowing_model

SLEEP_MS = 400.0
"""The control-sleep delay per prompt, long against the knowing model's own latency (it
ends its replies after a few tokens: about 15 ms)."""
LATENCY_TOLERANCE = 0.05
"""How far (relative) control-sleep's p50 may be from zero-shot's p50 plus the sleep."""
TINY_MODEL_OPTIONS = ["--set", "control-damage.learning_rate=1e-2",
                      "--set", "control-overfit.learning_rate=2e-2"]
"""The tiny model's weights are larger than a real model's, so the fine-tuning controls need a
higher learning rate to have their effect (the defaults suit smollm2-135m)."""


def session(tmp_path: Path, model: Path, approach_names: list[str], **options) -> ExperimentSession:
    """A smoke-budget session in-process (nothing is prepared until a run is opened)."""
    return ExperimentSession(SessionOptions(
        approaches=approach_names, model=str(model), budget="smoke",
        results=tmp_path / "r.db", **options))


def test_controls_are_registered_flagged_and_left_out_of_all(tiny_model_dir, tmp_path):
    registry = approaches()
    flagged = {name for name in registry.names() if registry.get(name).control}
    assert flagged == {control.name for control in CONTROLS}
    everything = session(tmp_path, tiny_model_dir, ["all"]).approach_names()
    assert "zero-shot" in everything and "full-ft" in everything
    assert not flagged & set(everything)
    named = session(tmp_path, tiny_model_dir, ["all", "control-random"]).approach_names()
    assert named == [*everything, "control-random"]


def test_opt_in_approaches_are_left_out_of_all_and_run_by_name(tiny_model_dir, tmp_path):
    registry = approaches()
    assert {name for name in registry.names() if registry.get(name).opt_in} == {"distill"}
    everything = session(tmp_path, tiny_model_dir, ["all"]).approach_names()
    assert "distill" not in everything and "full-ft" in everything
    asked = session(tmp_path, tiny_model_dir, ["all", "distill"]).approach_names()
    assert asked == [*everything, "distill"]


@pytest.mark.parametrize(("override", "message"), [
    ("control-sleep.sleep_ms=-5", "must be a number >= 0"),
    ("control-damage.mode=noise", "is not one of random-text, shuffled-labels"),
    ("control-overfit.train_examples=0", "must be a positive integer"),
    ("control-random-passages.chunk_overlap=200", "smaller than chunk_size"),
])
def test_control_options_are_checked_when_parsed(tiny_model_dir, tmp_path, override, message):
    with pytest.raises(OverrideError, match=message):
        session(tmp_path, tiny_model_dir, ["zero-shot"], overrides=[override])


def test_random_answers_are_seeded_and_uniform():
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(2000)]
    choices = [("a", "b", "c", "d")] * len(prompts)

    def picks(seed):
        scores = RandomCandidate(seed, ["a", "b"]).score_choices(prompts, choices)
        return [max(range(4), key=row.__getitem__) for row in scores]

    first = picks(0)
    assert picks(0) == first and picks(1) != first
    assert all(0.22 < first.count(choice) / len(first) < 0.28 for choice in range(4))
    replies = RandomCandidate(0, ["a", "b"]).generate(prompts)
    assert 0.45 < replies.count("a") / len(replies) < 0.55


def metrics(db: Path, approach: str, suite: str) -> dict[str, dict]:
    """The metrics ``approach``'s run recorded in ``suite``, by name."""
    rows = query_db(db, "SELECT m.* FROM metrics m JOIN runs r ON r.id = m.run_id "
                    "WHERE r.approach = ? AND m.suite = ?", approach, suite)
    return {row["name"]: dict(row) for row in rows}


def run_controls(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str],
                 suites: list[str], selection: str) -> Path:
    """The suites on the smoke budget in a subprocess, once per test run (``run_once``);
    returns the results database."""
    folder, result = run_once(
        tmp_path_factory, name, ["--budget=smoke", "--results=r.db", "-k", selection, *args],
        env=lambda folder: {"TUNEBENCH_CACHE": str(folder / "cache")}, suites=suites)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "r.db"


@pytest.fixture(scope="session")
def knowing_model_dir(tmp_path_factory) -> Path:
    """A tiny model taught the smoke budget's general probes and general text."""
    return built_once(tmp_path_factory, "knowing-model", make_knowing_model)


@pytest.fixture(scope="session")
def sentiment_runs(knowing_model_dir, tmp_path_factory) -> Path:
    """zero-shot, control-random, -sleep, -damage and -overfit on the knowing model."""
    return run_controls(
        tmp_path_factory, "sentiment-controls",
        ["--approach=zero-shot,control-random,control-sleep,control-damage,control-overfit",
         f"--model={knowing_model_dir}", "--set", f"control-sleep.sleep_ms={SLEEP_MS}",
         *TINY_MODEL_OPTIONS],
        ["test_accuracy.py", "test_forgetting.py", "test_latency.py", "test_overfitting.py"],
        "(zero-shot and (forgetting or latency)) or (control-random and accuracy) or "
        "(control-sleep and test_latency) or (control-damage and forgetting) or "
        "(control-overfit and loss_curves)",
    )


@pytest.fixture(scope="session")
def kbqa_runs(tiny_model_dir, tmp_path_factory) -> Path:
    """rag (BM25) and the retrieval controls on kb-qa."""
    return run_controls(
        tmp_path_factory, "kbqa-controls",
        ["--task=kb-qa", "--approach=rag,control-random-passages,control-quote,control-stale",
         f"--model={tiny_model_dir}", "--set", "rag.retriever=bm25"],
        ["test_retrieval.py", "test_knowledge_update.py"],
        "(test_recall_at_k and (rag or random-passages)) or "
        "(knowledge_update and (control-quote or control-stale))",
    )


@pytest.fixture(scope="session")
def prefs_runs(tiny_model_dir, tmp_path_factory) -> Path:
    return run_controls(
        tmp_path_factory, "prefs-controls",
        ["--task=prefs", "--approach=control-rejected", f"--model={tiny_model_dir}"],
        ["test_preferences.py"], "test_preference_accuracy",
    )


@pytest.mark.slow
def test_the_base_against_itself_shows_exactly_zero(sentiment_runs):
    zero = metrics(sentiment_runs, "zero-shot", "forgetting")
    assert zero["forgetting_delta"]["value"] == 0.0
    assert zero["items_fixed"]["value"] == zero["items_broken"]["value"] == 0
    assert zero["nll_per_token_delta"]["value"] == 0.0


@pytest.mark.slow
def test_random_answers_score_at_chance(sentiment_runs):
    accuracy = metrics(sentiment_runs, "control-random", "accuracy")
    for name in ("accuracy", "gen_accuracy"):  # two labels: chance is 0.5
        assert accuracy[name]["ci_low"] <= 0.5 <= accuracy[name]["ci_high"], accuracy[name]


@pytest.mark.slow
def test_a_known_sleep_shows_in_latency(sentiment_runs):
    base = metrics(sentiment_runs, "zero-shot", "latency")["latency_p50_ms"]["value"]
    slept = metrics(sentiment_runs, "control-sleep", "latency")["latency_p50_ms"]["value"]
    assert slept == pytest.approx(base + SLEEP_MS, rel=LATENCY_TOLERANCE), (base, slept)


@pytest.mark.slow
def test_damage_shows_as_forgetting(sentiment_runs):
    damage = metrics(sentiment_runs, "control-damage", "forgetting")
    assert damage["probe_accuracy_base"]["value"] >= 0.9  # the base knew them before
    assert damage["forgetting_delta"]["ci_high"] < 0
    assert damage["mcnemar_p"]["value"] < 0.05
    assert damage["nll_per_token_delta"]["ci_low"] > 0


@pytest.mark.slow
def test_memorising_a_few_examples_reads_as_overfit(sentiment_runs):
    verdict = metrics(sentiment_runs, "control-overfit", "overfitting")["overfit_verdict"]
    assert json.loads(verdict["extra_json"])["verdict"] == "overfit"
    assert verdict["value"] == VERDICT_CODES["overfit"]


@pytest.mark.slow
def test_random_passages_are_recalled_far_less_than_retrieved_ones(kbqa_runs):
    real = metrics(kbqa_runs, "rag", "retrieval")["recall_at_k"]
    random = metrics(kbqa_runs, "control-random-passages", "retrieval")["recall_at_k"]
    assert random["ci_high"] < real["ci_low"], (random, real)


@pytest.mark.slow
def test_knowledge_update_tells_a_rebuilt_index_from_a_stale_one(kbqa_runs):
    rebuilt = metrics(kbqa_runs, "control-quote", "knowledge_update")
    stale = metrics(kbqa_runs, "control-stale", "knowledge_update")
    assert rebuilt["new_facts_after"]["ci_low"] > rebuilt["old_facts_after"]["ci_high"]
    assert stale["old_facts_after"]["ci_low"] > stale["new_facts_after"]["ci_high"]


@pytest.mark.slow
def test_a_scorer_preferring_rejected_replies_falls_below_half(prefs_runs):
    preference = metrics(prefs_runs, "control-rejected", "preferences")["preference_accuracy"]
    assert preference["ci_high"] < 0.5, preference
