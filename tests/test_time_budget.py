"""``--time-budget`` (harness/runner/time_budget.py, harness/runner/budget_keeper.py): durations,
what each part of a session is given, adaptive scoring cut by the clock, the closing lines of
what was and was not decided, and two sessions on the tiny model that read the shared smoke
comparison's timings: one refused before training, one cut to its first looks."""

import json
import random
import re
import shutil

import pytest

from harness.measure.adaptive import (
    AdaptivePlan,
    References,
    chunks_in_time,
    evaluate_adaptively,
    score_until,
)
from harness.runner.estimate import PREPARE
from harness.runner.time_budget import (
    MIN_FRACTION,
    Share,
    TimeBudget,
    cut_short,
    decision_lines,
    items_needed,
    parse_duration,
    scored_in_time,
    share,
    training_line,
    unmeasured_lines,
)
from tests.conftest import query_db, run_suites


@pytest.mark.parametrize(("text", "seconds"), [
    ("10m", 600), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400), ("600", 600), (" 2M ", 120)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten minutes", "10x", "0", "-5", "m", "10m rest"])
def test_bad_durations_say_what_to_give(text):
    with pytest.raises(ValueError, match=r"--time-budget .*(give a duration|more than 0)"):
        parse_duration(text)


EXPECTED = {("a", PREPARE): 30.0, ("a", "accuracy"): 40.0, ("a", "forgetting"): 50.0,
            ("a", "latency"): 20.0, ("b", PREPARE): 60.0, ("b", "accuracy"): 40.0,
            ("b", "forgetting"): 50.0, ("b", "overfitting"): 5.0}
ORDER = list(EXPECTED)


def later(part):
    return ORDER[ORDER.index(part) + 1:]


def test_preparation_always_runs_and_later_decisive_parts_are_reserved():
    assert share(("a", PREPARE), EXPECTED, later(("a", PREPARE)), left=1.0).run
    # a's latency (20 s) must leave b's preparation (60), b's accuracy its adaptive share
    # (0.6 of 40 s) and b's forgetting (50) their time; nothing is kept for overfitting
    part = ("a", "latency")
    assert share(part, EXPECTED, later(part), left=154.0) == Share(True, 20.0)
    # a's latency is the last of its suite: it may take what is available, cut short
    cut = share(part, EXPECTED, later(part), left=144.0)
    assert cut.run and cut.seconds == pytest.approx(10.0) and cut.fraction == pytest.approx(0.5)
    skipped = share(part, EXPECTED, later(part), left=134.0 + 0.99 * MIN_FRACTION * 20)
    assert not skipped.run and skipped.reason.startswith(
        "time budget: latency of a would take about 20 s, 3 s are left for it (at least 15%")
    # overfitting ranks last and is not cut: whole or not at all
    part = ("b", "overfitting")
    assert share(part, EXPECTED, [], left=5.0).run
    assert not share(part, EXPECTED, [], left=4.9).run
    # a suite with no known cost runs while there is no time left
    assert share(("b", "judge"), {**EXPECTED, ("b", "judge"): 0.0}, [], left=-5.0).run


def test_forgetting_shares_what_is_available_with_the_forgetting_still_to_come():
    part = ("a", "forgetting")  # reserve: b's preparation 60 + b's accuracy 24
    whole = share(part, EXPECTED, later(part), left=84.0 + 100.0)
    assert whole == Share(True, 50.0)  # its half of 100 s is all it needs
    half = share(part, EXPECTED, later(part), left=84.0 + 50.0)
    assert half.run and half.seconds == pytest.approx(25.0)
    assert half.fraction == pytest.approx(0.5)
    assert not share(part, EXPECTED, later(part), left=84.0 + 14.0).run  # 7 s: under 15%
    last = ("b", "forgetting")
    assert share(last, EXPECTED, later(last), left=30.0).fraction == pytest.approx(0.6)


def test_an_accuracy_suite_gets_its_share_of_what_the_accuracy_suites_to_come_need():
    part = ("a", "accuracy")
    given = share(part, EXPECTED, later(part), left=164.0)  # 164 - 60 (b's preparation)
    assert given.run and given.seconds == pytest.approx(104.0 * 40 / 80)
    broke = share(part, EXPECTED, later(part), left=10.0)
    assert broke.run and broke.seconds == 0.0  # still one look: it stops after the first


def test_a_budget_the_training_alone_exceeds_is_refused():
    line, fits = training_line({("a", PREPARE): 300.0, ("b", PREPARE): 420.0}, budget=600.0)
    assert not fits and "cannot fit even the training, about 12 min on this machine" in line
    assert "give at least 13 min" in line
    line, fits = training_line({("a", PREPARE): 30.0, ("b", PREPARE): None}, budget=600.0)
    assert fits and "training under a minute (some not known yet)" in line
    assert "nothing to train" in training_line({}, budget=600.0)[0]
    assert "training not known yet (no past run to go by)" in training_line(
        {("a", PREPARE): None}, budget=600.0)[0]


class Item:
    def __init__(self, index):
        self.id = f"item-{index:03d}"


def rows_of(chunk):
    return [{"item_id": item.id, "correct": int(item.id[-1]) % 2} for item in chunk]


def test_the_clock_stops_an_adaptive_evaluation_after_a_look():
    items = [Item(i) for i in range(200)]
    plan = AdaptivePlan(ci_width=0.01)  # never precise enough on 200 items
    looks = iter([False, True])
    rows, outcome = evaluate_adaptively(
        items, rows_of, seed=0, plan=plan, value_of=lambda r: float(r["correct"]),
        item_id=lambda item: item.id, out_of_time=lambda: next(looks))
    assert outcome.stopped == "budget" and outcome.n_scored == len(rows) == 40
    rows, outcome = evaluate_adaptively(
        items, rows_of, seed=0, plan=plan, value_of=lambda r: float(r["correct"]),
        item_id=lambda item: item.id, out_of_time=lambda: False)
    assert outcome.stopped == "all" and len(rows) == 200
    assert len(score_until(items, rows_of, seed=0, plan=plan, out_of_time=lambda: True)) == 20
    assert len(score_until(items, rows_of, seed=0, plan=plan, out_of_time=None)) == 200


def test_a_part_cut_short_measures_its_share_of_the_items_in_the_seeds_order():
    items = [Item(i) for i in range(200)]
    plan = AdaptivePlan()
    assert [len(c) for c in chunks_in_time(items, 0, plan, None, limit=45)] == [20, 20, 5]
    looks = iter([False, True])
    assert [len(c) for c in chunks_in_time(items, 0, plan, lambda: next(looks))] == [20, 20]

    def score(chunk):
        return {"": rows_of(chunk), "prompted": [dict(r, view=1) for r in rows_of(chunk)]}

    budget = TimeBudget(600.0)
    assert budget.allowed(200) == 200
    whole, rows = scored_in_time(budget, plan, items, 0, score)
    assert whole == items and [r["item_id"] for r in rows[""]] == [i.id for i in items]
    budget.fraction, budget.deadline_of_test = 0.26, float("inf")
    assert budget.allowed(200) == 52 and budget.allowed(2) == 1
    kept, rows = scored_in_time(budget, plan, items, 0, score)
    assert len(kept) == 52 and kept == sorted(kept, key=items.index)  # the given order
    first = {item.id for chunk in chunks_in_time(items, 0, plan, None, limit=52)
             for item in chunk}
    assert {item.id for item in kept} == first  # the seed's first 52
    for view in ("", "prompted"):
        assert [r["item_id"] for r in rows[view]] == [item.id for item in kept]
    budget.deadline_of_test = 0.0  # the part's time is spent: one look
    assert len(scored_in_time(budget, plan, items, 0, score)[0]) == 20
    assert cut_short(52, 200) == {"n_scored": 52, "n_available": 200, "stopped": "budget",
                                  "stop_reason": "the time budget's share for it was spent"}
    assert cut_short(200, 200) == {}


def test_the_closing_lines_name_what_was_skipped_and_what_was_cut():
    lines = unmeasured_lines([("lora", "forgetting"), ("qlora", "forgetting"),
                              ("qlora", "latency")], {("adapters", "forgetting"): 0.42})
    assert lines == ["not measured, for lack of time: forgetting (lora, qlora); latency (qlora)",
                     "measured on part of their items, for lack of time: forgetting "
                     "(adapters 42%)"]
    assert unmeasured_lines([], {}) == []


def test_items_needed_grow_as_the_square_of_width_over_gap():
    # difference -0.01 [-0.06, +0.04] at n=100: 0.01 from the non-inferiority line at -0.02,
    # half-width 0.05, so about 100 * 5**2 items in all
    assert items_needed(-0.06, 0.04, -0.01, 100, margin=0.02) == 2500
    # below the margin but not clearly: 0.03 from -0.02, half-width 0.06
    assert items_needed(-0.11, 0.01, -0.05, 100, margin=0.02) == 400
    assert items_needed(-0.04, 0.0, -0.02, 100, margin=0.02) == 100  # on the line: no estimate


def test_the_closing_lines_say_what_was_separated_and_what_was_not():
    rng = random.Random(0)
    ids = [f"i{k}" for k in range(400)]
    best = {i: float(k % 10 != 0) for k, i in enumerate(ids)}  # 0.9 on any stretch of ten
    worse = {i: float(rng.random() < 0.5) for i in ids}
    close = {i: 0.0 if i in ("i1", "i2") else best[i] for i in ids[:60]}  # two more misses
    references = References()
    for name, values in (("full-ft", best), ("zero-shot", worse), ("adapters", close)):
        references.add("choice", 0, name, values)
    lines = decision_lines(references, "choice", [0], 400, AdaptivePlan())
    assert lines[0].startswith("decided: zero-shot worse than full-ft (-0.")
    assert lines[1].startswith("not decided: adapters vs full-ft: not separated at n=60 of 400")
    assert lines[1].endswith("more items than the 400 of the eval set would be needed")
    bigger = decision_lines(references, "choice", [0], 10**6, AdaptivePlan())
    assert re.search(r"; about \d+ more items would be needed$", bigger[1]), bigger[1]
    assert decision_lines(References(), "choice", [0], 400, AdaptivePlan()) == []
    references = References()
    on_the_line = {i: (0.0 if k in (1, 2) else best[i]) for k, i in enumerate(ids[:100])}
    for name, values in (("full-ft", best), ("adapters", on_the_line)):
        references.add("choice", 0, name, values)
    line = decision_lines(references, "choice", [0], 400, AdaptivePlan())[0]
    assert line.startswith("not decided: adapters vs full-ft: not separated at n=100 of 400 "
                           "(-0.020 [")
    assert line.endswith("its estimate lies on the margin (-0.02): more items would narrow "
                         "the interval around it without separating it")
    many = {f"j{k}": float(k % 10 != 0) for k in range(2000)}
    references = References()
    for name, values in (("full-ft", many), ("as-good", dict(many)),
                         ("elsewhere", {"other-item": 0.0})):
        references.add("choice", 0, name, values)
    lines = decision_lines(references, "choice", [0, 1], 2000, AdaptivePlan())
    assert lines[0].startswith("decided (seed 0): as-good within the margin of full-ft or "
                               "better (+0.000 [-0.0")
    assert lines[1] == "not decided (seed 0): elsewhere vs full-ft: no item scored by both"


@pytest.fixture
def smoke_timings(smoke_comparison, tmp_path):
    """A copy of the smoke comparison's results file: its runs are the sessions' estimate."""
    folder, _ = smoke_comparison
    shutil.copy(folder / "r.db", tmp_path / "r.db")
    return tmp_path


@pytest.mark.slow
def test_a_bad_budget_or_one_for_ray_is_a_usage_error(tiny_model_dir, tmp_path):
    for args, message in ((["--time-budget=ten"], "--time-budget 'ten': give a duration such "
                           "as 10m, 90s, 1h30m or a number of seconds"),
                          (["--time-budget=10m", "--executor=ray"],
                           "--time-budget plans one local session; with --executor=ray")):
        result = run_suites([*args, "--approach=zero-shot", f"--model={tiny_model_dir}"],
                            tmp_path, suites=["test_accuracy.py"])
        assert result.returncode == 4 and message in result.stdout + result.stderr


@pytest.mark.slow
def test_a_budget_smaller_than_the_training_is_refused_before_training(
        tiny_model_dir, smoke_timings):
    result = run_suites(["--approach=lora", "--budget=smoke", f"--model={tiny_model_dir}",
                         "--results=r.db", "--retrain", "--time-budget=0.1s"], smoke_timings,
                        env={"TUNEBENCH_CACHE": str(smoke_timings / "cache")},
                        suites=["test_accuracy.py"])
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "--time-budget under a minute cannot fit even the training" in output
    assert not (smoke_timings / "cache").exists()  # nothing trained


@pytest.mark.slow
def test_a_tight_budget_cuts_accuracy_to_a_look_and_skips_the_rest(tiny_model_dir,
                                                                    smoke_timings):
    result = run_suites(["--approach=zero-shot,few-shot", "--set", "few-shot.k=2",
                         "--budget=smoke", f"--model={tiny_model_dir}", "--results=r.db",
                         "--time-budget=0.1s", "-rs"], smoke_timings,
                        suites=["test_accuracy.py", "test_forgetting.py"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "time budget under a minute: nothing to train, the rest for measurement" in output
    assert "SKIPPED" in output and "time budget: forgetting of zero-shot would take" in output
    assert re.search(r"not decided: (few-shot vs zero-shot|zero-shot vs few-shot): not "
                     r"separated at n=10 of 40", output), output
    assert "not measured, for lack of time: forgetting (zero-shot, few-shot)" in output
    metrics = query_db(smoke_timings / "r.db",
                       "SELECT r.approach, m.suite, m.name, m.extra_json FROM metrics m JOIN "
                       "runs r ON r.id = m.run_id WHERE r.session = (SELECT max(session) FROM "
                       "runs)")
    assert {m["suite"] for m in metrics} == {"prepare", "accuracy"}  # no forgetting
    extras = {m["approach"]: json.loads(m["extra_json"]) for m in metrics
              if m["name"] == "accuracy"}
    assert extras["zero-shot"]["n_scored"] == 10 and extras["zero-shot"]["stopped"] == "budget"
    assert extras["zero-shot"]["interval"] == "confidence sequence"
    assert extras["few-shot"] == {**extras["few-shot"], "n_scored": 10, "n_available": 40,
                                  "stopped": "budget", "interval": "bootstrap"}
