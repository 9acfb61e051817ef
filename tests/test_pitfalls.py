"""The recommendation names the measured pitfalls of the candidate it picks (reports.pitfalls):
forgetting and perplexity findings with their CIs, an overfit verdict, the cheapest good-enough
alternative free of them and the requirement that excludes them; on hand-made candidates and
end to end on a database written with ``harness.runner.store.Store``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.measure.metrics import accuracy
from harness.measure.overfitting import VERDICT_CODES
from harness.runner.store import RunRecord, Store
from reports import data, example_data
from reports.decision import Candidate, Requirements, recommend, report
from reports.pitfalls import pitfalls

KINDS = {"zero-shot": "prompting", "few-shot": "prompting", "lora": "parameter-efficient",
         "adapters": "parameter-efficient", "distill": "distillation",
         "full-ft": "full fine-tuning"}
N = 1000
RIGHT = {"adapters": 934, "full-ft": 930, "distill": 928, "lora": 931}
"""Items right of 1,000, nested (each right on the first ones): every paired difference from
adapters is a few broken items, its CI well above -0.02, so all four are good enough."""
CLEAN = {"forgetting_delta": (0.113, 0.077, 0.150), "forgetting_delta_raw": (0.056, 0.02, 0.09),
         "nll_per_token_delta": (-0.017, -0.02, -0.014)}
"""Forgetting measurements with no finding (full-ft's in the default comparison)."""
ADAPTERS = {"forgetting_delta": (0.058, 0.02, 0.09),
            "forgetting_delta_raw": (-0.071, -0.108, -0.037),
            "nll_per_token_delta": (0.301, 0.230, 0.370)}
"""The default comparison's adapters: chat probes up, raw probes down, perplexity up."""


def candidate(name: str, cells: dict[str, tuple[float, float | None, float | None]],
              right: int | None = None) -> Candidate:
    items = {f"q{k:04d}": k < (right or RIGHT[name]) for k in range(N)}
    estimate = accuracy(list(items.values()))
    return Candidate(name, name, estimate.value, estimate.low, estimate.high,
                     {"full-ft": 344.0, "distill": 390.0}.get(name, 300.0), KINDS[name],
                     items, {n: cell[0] for n, cell in cells.items()}, cells=cells)


def default_comparison() -> list[Candidate]:
    return [candidate("adapters", ADAPTERS), candidate("full-ft", CLEAN),
            candidate("distill", CLEAN)]


def test_the_sentence_names_the_choices_pitfalls_the_alternative_and_the_option():
    found = recommend(default_comparison(), "accuracy")
    assert found.choice.name == "adapters" and len(found.good_enough) == 3
    assert ("Measured pitfalls of adapters: forgets on raw probes -0.071 [-0.108, -0.037]; "
            "raises perplexity +0.301 nats/token [+0.230, +0.370].") in found.sentence
    # distillation is cheaper than full fine-tuning in the rule's order
    assert ("distill (distillation, accuracy 0.928 [0.910, 0.943]) is also good enough and "
            "shows none of these.") in found.sentence
    assert ("No requirement excludes forgetting on raw probes or a perplexity rise: "
            "--min-forgetting reads only forgetting_delta, the chat probes (+0.058 [+0.020, "
            "+0.090] for adapters).") in found.sentence
    # the pitfalls follow the choice's own sentence, before the notes
    head, _, rest = found.sentence.partition(" Measured pitfalls")
    assert head.endswith("fine-tune parameter-efficiently, with adapters.") and rest


def test_a_chat_probe_loss_names_the_requirement_that_excludes_it():
    lora = candidate("lora", {**CLEAN, "forgetting_delta": (-0.045, -0.07, -0.02)})
    found = recommend([lora, candidate("full-ft", CLEAN)], "accuracy")
    assert found.choice is lora
    assert "Measured pitfalls of lora: forgets on chat probes -0.045 [-0.070, -0.020]." \
        in found.sentence
    assert ('--min-forgetting 0 (the dashboard\'s "min forgetting_delta") would exclude it.'
            in found.sentence)
    assert "No requirement excludes" not in found.sentence
    # and it does: with the requirement the rule moves to the candidate free of findings
    needs = Requirements(min_forgetting=0)
    assert recommend([lora, candidate("full-ft", CLEAN)], "accuracy",
                     requirements=needs).choice.name == "full-ft"


def test_overfitting_and_no_alternative_free_of_findings():
    overfit = {**CLEAN, "overfit_verdict": (float(VERDICT_CODES["overfit"]), None, None),
               "final_validation_loss": (1.15, None, None),
               "best_validation_loss": (0.23, None, None)}
    adapters = candidate("adapters", overfit)
    full = candidate("full-ft", {**CLEAN, "nll_per_token_delta": (0.22, 0.18, 0.26)})
    distill = candidate("distill", {"forgetting_delta": (0.0, -0.01, 0.01)})  # raw not measured
    found = recommend([adapters, full, distill], "accuracy")
    assert found.choice is adapters
    assert ("Measured pitfalls of adapters: overfits by its training curves (validation loss "
            "1.15 at the end, 0.23 at its lowest).") in found.sentence
    assert ("No other good-enough candidate is free of them: distill not measured on "
            "overfit_verdict; full-ft raises perplexity +0.220 nats/token [+0.180, +0.260]."
            ) in found.sentence
    assert "No requirement excludes overfitting: --min-forgetting reads only" in found.sentence


def test_no_finding_no_pitfall_text():
    clean = default_comparison()[1:]
    found = recommend(clean, "accuracy")
    assert pitfalls(found.choice) == [] and "pitfall" not in found.sentence.lower()
    assert "--min-forgetting" not in found.sentence
    # a loss whose CI reaches above 0 is no finding; an unmeasured candidate has none either
    unsure = candidate("lora", {"forgetting_delta": (-0.05, -0.13, 0.01)})
    assert pitfalls(unsure) == [] and pitfalls(candidate("lora", {})) == []
    # prompt interference is named as such
    few = candidate("few-shot", {"forgetting_delta": (0.0, 0.0, 0.0),
                                 "interference_delta": (-0.094, -0.13, -0.06)}, right=900)
    assert [p.text for p in pitfalls(few)] == [
        "its prompts interfere with unrelated questions (probes through its prompts -0.094 "
        "[-0.130, -0.060])"]


# --- end to end: forgetting metrics with CIs and per-item rows in a real database ---

def _run(store: Store, approach: str, cells: dict[str, tuple[float, float, float]]) -> None:
    run = store.start_run(RunRecord(
        session="s", approach=approach, task="sentiment", model="m", seed=0, budget="quick",
        config={}, config_hash=f"h-{approach}", data_hash="d", model_version="m1",
        code_version="c", packages={}, device="cpu", kind=KINDS[approach]))
    correct = [k < RIGHT[approach] for k in range(N)]
    acc = accuracy(correct)
    store.add_metric(run, "accuracy", "accuracy", acc.value, low=acc.low, high=acc.high, n=N,
                     higher_is_better=True)
    rows = [{"item_id": f"q{k:04d}", "prompt": f"review {k}", "correct": hit}
            for k, hit in enumerate(correct)]
    random.Random(approach).shuffle(rows)
    store.add_examples(run, "accuracy.choice", rows)
    for name, (value, low, high) in cells.items():
        store.add_metric(run, "forgetting", name, value, low=low, high=high,
                         higher_is_better=name != "nll_per_token_delta")
    store.add_metric(run, "prepare", "train_seconds", 300.0 if approach == "adapters" else 344.0)
    store.finish_run(run, "finished")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pitfalls") / "results.db"
    store = Store(path)
    _run(store, "adapters", ADAPTERS)
    _run(store, "full-ft", CLEAN)
    _run(store, "distill", CLEAN)
    store.close()
    return path


def test_the_report_on_a_database_names_the_pitfalls(database):
    conn = data.connect(database)
    try:
        long = data.metrics(conn)
        _, found, metric = report(long, items=lambda suite, ids, value: (
            example_data.item_scores_by_run(conn, ids, suite, value)))
    finally:
        conn.close()
    assert metric == "accuracy" and found.choice.name == "adapters"
    assert {v.test for v in found.verdicts[1:]} == {"paired"}
    assert ("Measured pitfalls of adapters: forgets on raw probes -0.071 [-0.108, -0.037]; "
            "raises perplexity +0.301 nats/token [+0.230, +0.370].") in found.sentence
    assert "distill (distillation, accuracy 0.928 [" in found.sentence
    assert "--min-forgetting reads only forgetting_delta" in found.sentence
