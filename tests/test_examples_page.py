"""The examples page's data (``reports.data``): per-item metrics of free replies, their
columns, candidates side by side on any per-item metric sorted by their largest disagreement,
and per-item scores feeding ``harness.measure.compare``; on a store written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure.compare import compare_by_id
from harness.runner.store import RunRecord, Store
from reports import data, example_data

SUITE = "accuracy.generation"
F1_A = [0.2, 0.5, 0.9, 0.4, 1 / 3, 0.6]
F1_B = [0.3, 0.4, 0.1, 0.45, 0.4, 0.6]
"""B - A: +0.1, -0.1, -0.8 (q2, the largest disagreement), +0.05, +0.067, 0 (a tie)."""
MODEL_MS_A = [10, 10, 10, 10, 10, 10]
MODEL_MS_B = [5, 20, 10, 10, 10, 10]
"""Lower is better: B better on q0, worse on q1."""
CORRECT_A = [False, False, True, False, False, True]
CORRECT_B = [False, False, False, False, False, True]


def _run(store: Store, approach: str, headline: str) -> int:
    run = store.start_run(RunRecord(
        session="s", approach=approach, task="open-qa", model="m", seed=0, budget="smoke",
        config={}, config_hash=f"h-{approach}", data_hash="d", model_version="m",
        code_version="c", packages={}, device="cpu", kind="prompting"))
    store.update_info(run, {"headline_metric": headline})
    return run


def _rows(who: str, f1: list[float], model_ms: list[int], correct: list[bool]) -> list[dict]:
    return [{"item_id": f"q{k}", "prompt": f"question {k}?", "prediction": f"{who} reply {k}",
             "reference": f"answer {k}", "correct": correct[k], "latency_ms": 12.0,
             "extra": {"generated": f"{who} reply {k}", "f1": f1[k], "model_ms": model_ms[k],
                       "mystery_score": 7, "latency_ms": 12.0, "kind": "fact"}}
            for k in range(len(f1))]


def open_task_store(path: Path) -> dict[str, int]:
    """Two candidates of an open task: ``zero-shot`` (headline chrF, not recorded per item)
    and ``lora`` (headline F1, the newest run), with generation rows carrying F1, model_ms
    and numbers the metric catalogue does not describe; plus classification rows."""
    store = Store(path)
    ids = {"zero-shot": _run(store, "zero-shot", "chrf"), "lora": _run(store, "lora", "f1")}
    store.add_examples(ids["zero-shot"], SUITE, _rows("A", F1_A, MODEL_MS_A, CORRECT_A))
    store.add_examples(ids["lora"], SUITE, _rows("B", F1_B, MODEL_MS_B, CORRECT_B))
    for run, hits in ((ids["zero-shot"], CORRECT_A), (ids["lora"], CORRECT_B)):
        store.add_examples(run, "accuracy.choice", [
            {"item_id": f"c{k}", "prompt": f"review {k}", "prediction": "pos" if hit else "neg",
             "reference": "pos", "correct": hit, "extra": {"choice_logprobs": {"pos": -1.0}}}
            for k, hit in enumerate(hits)])
        store.finish_run(run, "finished")
    store.close()
    return ids


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("examples") / "open.db"
    ids = open_task_store(path)
    conn = data.connect(path)
    yield conn, ids["zero-shot"], ids["lora"]
    conn.close()


def test_item_metrics_are_the_catalogued_numbers_of_the_rows(store):
    conn, a, _ = store
    assert example_data.item_metrics(conn, a, SUITE) == ["correct", "f1", "model_ms"]
    assert example_data.item_metrics(conn, a, "accuracy.choice") == ["correct"]


def test_generation_page_shows_reply_reference_and_each_metric(store):
    conn, a, _ = store
    page, total = example_data.examples_page(conn, a, SUITE)
    assert total == 6
    assert list(page.columns) == ["item_id", "prompt", "reply", "reference", "correct", "f1",
                                  "model_ms"]
    assert page["reply"].iloc[0] == "A reply 0" and page["reference"].iloc[0] == "answer 0"
    assert page["f1"].tolist() == [0.2, 0.5, 0.9, 0.4, 0.333, 0.6]  # rounded to 3 decimals
    wrong, n_wrong = example_data.examples_page(conn, a, SUITE, correct=False, search="question 4")
    assert n_wrong == 1 and wrong["item_id"].tolist() == ["q4"]
    choice, _ = example_data.examples_page(conn, a, "accuracy.choice")
    assert list(choice.columns) == ["item_id", "prompt", "prediction", "reference", "correct",
                                    "score", "latency_ms", "extra_json"]


def test_side_by_side_puts_the_largest_disagreement_first(store):
    conn, a, b = store
    pairs, total = example_data.side_by_side(conn, a, b, SUITE, metric="f1", order="difference")
    assert total == 6
    assert list(pairs.columns) == ["item_id", "prompt", "reply_a", "reply_b", "reference",
                                   "f1_a", "f1_b", "difference"]
    assert pairs["item_id"].tolist() == ["q2", "q0", "q1", "q4", "q3", "q5"]
    assert pairs.iloc[0][["reply_a", "reply_b", "f1_a", "f1_b", "difference"]].tolist() == [
        "A reply 2", "B reply 2", 0.9, 0.1, -0.8]
    in_order, _ = example_data.side_by_side(conn, a, b, SUITE, metric="f1", order="item")
    assert in_order["item_id"].tolist() == ["q0", "q1", "q2", "q3", "q4", "q5"]
    searched, n = example_data.side_by_side(conn, a, b, SUITE, metric="f1", search="question 3")
    assert n == 1 and searched["item_id"].tolist() == ["q3"]


@pytest.mark.parametrize(("metric", "only", "items"), [
    ("f1", "fixed", {"q0", "q3", "q4"}),  # B better
    ("f1", "broken", {"q1", "q2"}),
    ("f1", "disagree", {"q0", "q1", "q2", "q3", "q4"}),
    ("model_ms", "fixed", {"q0"}),  # lower is better: B faster
    ("model_ms", "broken", {"q1"}),
    ("correct", "broken", {"q2"}),  # A right, B wrong
])
def test_fixed_and_broken_mean_b_better_and_b_worse(store, metric, only, items):
    conn, a, b = store
    pairs, total = example_data.side_by_side(conn, a, b, SUITE, metric=metric, only=only)
    assert set(pairs["item_id"]) == items and total == len(items)


def test_classification_side_by_side_keeps_its_columns(store):
    conn, a, b = store
    pairs, _ = example_data.side_by_side(conn, a, b, "accuracy.choice", order="difference")
    assert list(pairs.columns) == ["item_id", "prompt", "reference", "prediction_a",
                                   "correct_a", "prediction_b", "correct_b"]
    assert pairs["item_id"].iloc[0] == "c2"  # the one disagreement first
    with pytest.raises(ValueError, match="only must be one of"):
        example_data.side_by_side(conn, a, b, SUITE, only="better")


def test_item_scores_feed_the_paired_comparison(store):
    conn, a, b = store
    scores = example_data.item_scores_by_run(conn, [a, b], SUITE, "f1")
    assert scores[a] == example_data.item_scores(conn, a, SUITE, "f1")
    assert scores[b]["q2"] == pytest.approx(0.1) and len(scores[a]) == 6
    assert example_data.item_scores(conn, a, SUITE, "mystery_score")["q0"] == 7.0
    assert example_data.item_scores(conn, a, SUITE, "absent") == {}
    assert example_data.correctness(conn, a, SUITE) == {
        f"q{k}": hit for k, hit in enumerate(CORRECT_A)}
    assert example_data.correctness_by_run(conn, [a, b], SUITE)[b]["q5"] is True
    graded = compare_by_id(scores[a], scores[b])
    assert (graded.fixed, graded.broken, graded.both_right) == (3, 2, 1)
    assert graded.delta.value == pytest.approx(sum(F1_B) / 6 - sum(F1_A) / 6)
    right_wrong = compare_by_id(example_data.correctness(conn, a, SUITE),
                                example_data.correctness(conn, b, SUITE))
    assert (right_wrong.fixed, right_wrong.broken) == (0, 1)


def test_side_by_side_pairs_each_items_last_row(tmp_path):
    """An item stored twice (a suite re-run) is paired once, by its last row, as
    ``item_scores`` reads it (the speed of pairing is benchmarks/bench_dashboard.py's)."""
    store = Store(tmp_path / "big.db")
    a, b = _run(store, "zero-shot", "f1"), _run(store, "lora", "f1")
    n = 300
    ones = [0.5] * n
    for run, who, f1 in ((a, "A", ones), (b, "B", [k / (n - 1) for k in range(n)])):
        store.add_examples(run, SUITE, _rows(who, f1, [1] * n, [False] * n))
    store.add_examples(b, SUITE, [{**_rows("B", [0.9], [1], [True])[0], "prediction": "again",
                                   "extra": {"generated": "again", "f1": 0.9}}])
    store.close()
    conn = data.connect(tmp_path / "big.db")
    pairs, total = example_data.side_by_side(conn, a, b, SUITE, metric="f1", order="difference",
                                     limit=3)
    assert total == n
    assert pairs.iloc[0][["item_id", "reply_b", "f1_b"]].tolist() == ["q299", "B reply 299",
                                                                       1.0]
    # q0's first row (B - A = -0.5) would tie q299 and come first; its last row (0.4) not
    assert pairs["item_id"].tolist()[1:] == ["q1", "q298"]  # same |B - A|: item order
    first, _ = example_data.side_by_side(conn, a, b, SUITE, metric="f1", search="question 0?")
    assert first[["reply_b", "f1_b"]].values.tolist() == [["again", 0.9]]
    assert example_data.item_scores(conn, b, SUITE, "f1")["q0"] == 0.9
    conn.close()
