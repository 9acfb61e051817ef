"""``--adaptive on`` end to end: a runner session on the tiny model records what it scored, why
it stopped and the confidence sequence as the interval; the second candidate is paired with
the first on the same items."""

from __future__ import annotations

import json

import pytest

from harness.measure.adaptive import item_order
from harness.measure.sequential import difference_sequence, mean_sequence
from tests.conftest import query_db as rows
from tests.conftest import run_suites

pytestmark = pytest.mark.slow  # the experiment runner in a subprocess


@pytest.fixture(scope="module")
def adaptive_run(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("adaptive")
    result = run_suites(
        ["--approach=zero-shot,few-shot", "--budget=smoke", f"--model={tiny_model_dir}",
         "--results=r.db", "--set", "few-shot.k=2", "--set", "few-shot.draws=1",
         "--adaptive", "on", "--ci-width", "1.0", "-k", "choice_accuracy"],
        folder, env={"TUNEBENCH_CACHE": str(folder / "cache")}, suites=["test_accuracy.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "r.db", result.stdout


def accuracy_of(db, approach):
    run = rows(db, "SELECT id FROM runs WHERE approach = ?", approach)[0]
    metric = rows(db, "SELECT * FROM metrics WHERE run_id = ? AND name = 'accuracy'",
                  run["id"])[0]
    examples = rows(db, "SELECT item_id, correct FROM examples WHERE run_id = ? "
                        "AND suite = 'accuracy.choice' ORDER BY id", run["id"])
    return metric, json.loads(metric["extra_json"]), examples


def test_a_settled_candidate_stops_and_says_why(adaptive_run):
    db, output = adaptive_run
    metric, extra, examples = accuracy_of(db, "zero-shot")
    assert extra["adaptive"] is True and extra["interval"] == "confidence sequence"
    assert extra["stopped"] == "precise" and "at most 1 wide" in extra["stop_reason"]
    assert extra["n_available"] == 40 and extra["n_scored"] == metric["n"] == 10
    assert len(examples) == 10  # only what it scored is stored
    # the stored interval is the confidence sequence over the scored items, in their order
    sequence = mean_sequence([float(e["correct"]) for e in examples])
    assert (metric["ci_low"], metric["ci_high"]) == pytest.approx((sequence.low, sequence.high))
    assert metric["value"] == pytest.approx(sum(e["correct"] for e in examples) / 10)
    assert "adaptive accuracy of zero-shot: 10 of 40 items, precise enough" in output
    assert "n=10/40" in output and "anytime-valid confidence sequences" in output


def test_items_come_in_the_seeds_order_and_the_next_candidate_is_paired_on_them(adaptive_run):
    db, _ = adaptive_run
    _, _, first = accuracy_of(db, "zero-shot")
    metric, extra, second = accuracy_of(db, "few-shot")
    assert metric["n"] == len(second) == 10
    assert [e["item_id"] for e in first] == [e["item_id"] for e in second]
    everything = rows(db, "SELECT DISTINCT item_id FROM examples")
    ordered = item_order([e["item_id"] for e in everything], 0, str)
    assert [e["item_id"] for e in first] == [i for i in ordered if i in
                                             {e["item_id"] for e in first}]
    assert extra["versus"] == "zero-shot" and extra["shared"] == 10
    difference = difference_sequence([float(e["correct"]) for e in second],
                                     [float(e["correct"]) for e in first])
    assert (extra["difference_low"], extra["difference_high"]) == pytest.approx(
        (difference.low, difference.high))


def test_a_ci_width_out_of_range_is_a_usage_error(tmp_path):
    result = run_suites(["--approach=zero-shot", "--adaptive", "on", "--ci-width", "0"],
                        tmp_path)
    assert result.returncode == 4
    assert "--ci-width is the width of a 95% interval" in result.stderr
    assert not (tmp_path / "results").exists()
