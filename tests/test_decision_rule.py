"""The decision rule: requirements first, then non-inferiority against the best (the lower
bound of the paired difference's 95% CI above -margin), then the cheapest kind; on hand-made
candidates and per-item rows, and end to end through ``python -m reports.export`` on a database
written with ``harness.runner.store.Store``."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from harness.measure.compare import compare_by_id, intervals_overlap, tied_groups
from harness.measure.metrics import Estimate, accuracy
from harness.runner.store import RunRecord, Store
from reports import data, example_data, export
from reports.decision import Candidate, Requirements, recommend, report, verdict_table
from reports.rule import PAIRED, UNPAIRED, judge

KINDS = {"zero-shot": "prompting", "few-shot": "prompting", "rag": "retrieval",
         "lora": "parameter-efficient", "full-ft": "full fine-tuning"}


def hits(right: set[int] | range, n: int) -> dict[str, bool]:
    """Per-item correctness keyed by item id (``q000``...), right on the ``right`` indices."""
    return {f"q{k:03d}": k in right for k in range(n)}


def candidate(name: str, items: dict[str, bool] | None, *, value: float | None = None,
              seconds: float | None = None, measures: dict[str, float] | None = None,
              keep_items: bool = True) -> Candidate:
    """A candidate whose value and CI are computed from its items (as the suites do)."""
    estimate = accuracy(list(items.values())) if items else Estimate(value or 0, 0, 0, 0)
    low, high = (estimate.low, estimate.high) if items else (None, None)
    return Candidate(name, name, estimate.value if items else float(value or 0), low, high,
                     seconds, KINDS[name], items if keep_items else None, measures or {})


def paired_200() -> tuple[Candidate, Candidate]:
    """Few-shot right on 120 of 200 items; LoRA right on those and 14 more (0.60 vs 0.67)."""
    few = candidate("few-shot", hits(range(120), 200))
    lora = candidate("lora", hits(range(134), 200), seconds=800.0)
    return few, lora


def test_the_paired_lower_bound_decides_where_ci_overlap_saw_a_tie():
    few, lora = paired_200()
    assert (few.value, lora.value) == (0.60, 0.67)
    assert intervals_overlap((few.low, few.high), (lora.low, lora.high))
    intervals = {c.name: (c.value, c.low, c.high) for c in (few, lora)}
    assert tied_groups(intervals) == [["lora", "few-shot"]]  # the oldest rule: tied, few-shot
    without_items = candidate("few-shot", hits(range(120), 200), keep_items=False)
    old = recommend([without_items, lora], "accuracy", margin=0.1)
    assert old.choice is lora  # the fallback's conservative bound, 0.530 - 0.735, is far below
    assert old.verdicts[1].low == pytest.approx(without_items.low - lora.high)
    assert "the conservative lower bound -0.200 is below -0.1" in old.sentence

    found = recommend([few, lora], "accuracy", margin=0.1)
    verdict = found.verdicts[1]
    assert verdict.test == PAIRED and verdict.shared == 200
    assert verdict.p_value < 0.001 and not verdict.good_enough
    assert verdict.difference == pytest.approx(-0.07)
    assert verdict.low == pytest.approx(-0.105, abs=5e-4) and verdict.high < 0
    assert found.choice is lora and found.good_enough == (lora,)
    assert "few-shot (paired difference -0.070 [" in found.sentence
    assert ("McNemar p < 0.001; not shown non-inferior: the CI's lower bound -0.105 is below "
            "-0.1)") in found.sentence
    assert "95% CIs" not in found.sentence
    # significantly worse, yet the whole interval lies within a wider margin: good enough
    wide = recommend([few, lora], "accuracy", margin=0.11)
    assert wide.choice is few and wide.verdicts[1].good_enough
    assert ("non-inferior: the CI's lower bound -0.105 is above -0.11, though significantly "
            "worse (p < 0.05) by less than the margin") in wide.sentence


def test_items_are_matched_by_id_not_position():
    few, lora = paired_200()
    shuffled = list(few.items.items())
    random.Random(3).shuffle(shuffled)
    mixed = Candidate("few-shot", "few-shot", few.value, few.low, few.high, kind="prompting",
                      items=dict(shuffled))
    assert judge(mixed, lora).p_value == judge(few, lora).p_value < 0.001
    extra = {**few.items, "elsewhere": True}  # an item the best never answered is left out
    assert judge(Candidate("x", "x", 0.6, items=extra), lora).shared == 200


def test_compare_by_id():
    a, b = {"x": True, "y": False, "z": True}, {"z": False, "y": True, "w": True}
    comparison = compare_by_id(a, b)
    assert (comparison.n, comparison.fixed, comparison.broken) == (2, 1, 1)
    assert compare_by_id(a, {"other": True}) is None
    assert intervals_overlap((0.1, 0.2), (0.2, 0.3)) and not intervals_overlap((0, 1), (2, 3))


def test_the_rule_names_the_paired_test_its_values_get():
    """0/1 values (an exact-match headline) are compared by McNemar's test, graded ones (chrF)
    by the randomisation test; the rule text and the verdict table say which."""
    few, lora = paired_200()
    as_floats = [replace(c, items={k: float(v) for k, v in c.items.items()})
                 for c in (few, lora)]
    binary = recommend(as_floats, "exact_match")
    assert "McNemar's exact test" in binary.rule and "McNemar p" in verdict_table(binary)
    graded = recommend([replace(c, items={k: 0.5 * v + 0.25 for k, v in c.items.items()})
                        for c in as_floats], "chrf")
    assert "a paired randomisation test" in graded.rule
    assert "paired p (randomisation)" in verdict_table(graded)


def test_not_significant_but_beyond_the_margin():
    # 100 items: LoRA right on 80; few-shot fixes 5 of LoRA's misses and breaks 9 of its hits
    lora_right = set(range(80))
    few_right = (lora_right - set(range(9))) | set(range(80, 85))
    lora = candidate("lora", hits(lora_right, 100), seconds=600.0)
    few = candidate("few-shot", hits(few_right, 100))
    strict = recommend([few, lora], "accuracy", margin=0.02)
    verdict = strict.verdicts[1]
    assert verdict.test == PAIRED and verdict.p_value == pytest.approx(0.424, abs=1e-3)
    assert verdict.difference == pytest.approx(-0.04) and not verdict.good_enough
    assert strict.choice is lora
    assert ("not shown non-inferior: the CI's lower bound -0.110 is below -0.02, though the "
            "difference is not significant (p >= 0.05)") in strict.sentence
    # the point estimate, -0.04, is within 0.05 but the interval is not: the old rule's pick
    assert not judge(few, lora, margin=0.05).good_enough
    lenient = recommend([few, lora], "accuracy", margin=0.12)
    assert lenient.choice is few and lenient.best is lora
    assert ("paired difference -0.040 [-0.110, +0.030]" in lenient.sentence
            and "on 100 shared items, McNemar p = 0.42" in lenient.sentence)
    assert "non-inferior: the CI's lower bound -0.110 is above -0.12" in lenient.sentence
    assert lenient.sentence.endswith("prompt, with few-shot.")
    assert "is at least -0.12" in lenient.rule and "significant at p < 0.05" in lenient.rule
    assert "Wellek, 2010" in lenient.rule


def test_small_eval_set_not_significant_within_the_margin_is_not_good_enough():
    """The issue's case: 40 items, a point estimate within the margin and no significant
    difference, but an interval reaching far below -margin. The old rule ("not significant
    and the point estimate above -margin") called it good enough; non-inferiority does not."""
    best_right = set(range(34))  # 0.850
    few_right = (best_right - {0, 1, 2, 3}) | {34, 35, 36}  # 0.825: 3 fixed, 4 broken
    best = candidate("lora", hits(best_right, 40), seconds=600.0)
    few = candidate("few-shot", hits(few_right, 40))
    verdict = judge(few, best, margin=0.05)
    assert verdict.difference == pytest.approx(-0.025) and verdict.difference > -0.05
    assert verdict.p_value >= 0.05  # not significant: the old rule's "good enough"
    assert verdict.low < -0.1  # the interval reaches twice the margin below
    assert not verdict.good_enough
    found = recommend([few, best], "accuracy", margin=0.05)
    assert found.choice is best and found.good_enough == (best,)
    assert (f"not shown non-inferior: the CI's lower bound {verdict.low:+.3f} is below -0.05, "
            "though the difference is not significant (p >= 0.05): too few eval items to show "
            "it is within the margin") in found.sentence


def test_large_eval_set_with_a_tight_interval_above_the_margin_is_good_enough():
    # 4,000 items: few-shot fixes 30 of LoRA's misses and breaks 50 of its hits (-0.005)
    best_right = set(range(3200))
    few_right = (best_right - set(range(50))) | set(range(3200, 3230))
    best = candidate("lora", hits(best_right, 4000), seconds=600.0)
    few = candidate("few-shot", hits(few_right, 4000))
    verdict = judge(few, best, margin=0.02)
    assert verdict.difference == pytest.approx(-0.005)
    assert -0.02 < verdict.low < -0.005 < verdict.high < 0.005
    assert verdict.good_enough
    found = recommend([few, best], "accuracy", margin=0.02)
    assert found.choice is few
    assert (f"non-inferior: the CI's lower bound {verdict.low:+.3f} is above -0.02"
            in found.sentence)


def test_a_lower_bound_of_exactly_the_margin_is_within_it():
    lora = candidate("lora", hits(range(80), 100), seconds=600.0)
    few = candidate("few-shot", hits(range(78), 100))
    assert judge(few, lora).low == -0.05  # paired-bootstrap CI [-0.05, 0]
    at = judge(few, lora, margin=0.05)
    assert at.good_enough
    assert at.reason(margin=0.05, alpha=0.05) == (
        "non-inferior: the CI's lower bound -0.050 is at -0.05")
    assert not judge(few, lora, margin=0.049).good_enough


def test_cheapest_kind_then_fewer_training_seconds_among_the_good_enough():
    items = hits(range(80), 100)
    full = candidate("full-ft", items, seconds=500.0)
    slow = Candidate("lora", "lora", 0.8, kind="parameter-efficient", train_seconds=900.0,
                     items=items)
    quick = Candidate("qlora", "qlora", 0.8, kind="parameter-efficient", train_seconds=300.0,
                      items=items)
    found = recommend([full, slow, quick], "accuracy")
    assert found.choice is quick and len(found.good_enough) == 3


MEASURED = {
    "few-shot": {"latency_p95_ms": 250.0, "cost_per_1k_requests": 0.05, "train_cost": 0.0,
                 "forgetting_delta": 0.0, "reads_documents": 0.0},
    "rag": {"latency_p95_ms": 420.0, "cost_per_1k_requests": 0.08, "train_cost": 0.0,
            "forgetting_delta": 0.0, "reads_documents": 1.0, "new_facts_after": 0.9,
            "old_facts_after": 0.05},
    "lora": {"latency_p95_ms": 140.0, "cost_per_1k_requests": 0.25, "train_cost": 0.4,
             "forgetting_delta": -0.01, "reads_documents": 0.0},
    "full-ft": {"latency_p95_ms": 812.0, "cost_per_1k_requests": 0.04, "train_cost": 3.2,
                "forgetting_delta": -0.2, "reads_documents": 0.0},
    "zero-shot": {"train_cost": 0.0},
}


def measured_candidates() -> dict[str, Candidate]:
    """Accuracies 0.90, 0.88, 0.86, 0.80, 0.60 on 100 shared items; few-shot against RAG:
    2 items fixed, 8 broken (McNemar p = 0.11), a difference of -0.06."""
    rights = {"full-ft": range(90), "lora": range(88), "rag": range(86),
              "few-shot": set(range(78)) | {86, 87}, "zero-shot": range(60)}
    return {name: candidate(name, hits(right, 100), measures=MEASURED[name],
                            seconds=3000.0 if name == "full-ft" else None)
            for name, right in rights.items()}


def test_requirements_exclude_candidates_with_named_reasons():
    c = measured_candidates()
    needs = Requirements(max_p95_ms=500, max_cost_per_1k=0.1, max_train_cost=1.0,
                         min_forgetting=-0.02)
    found = recommend(list(c.values()), "accuracy", requirements=needs, margin=0.05)
    reasons = {e.name: e.reasons for e in found.excluded}
    assert reasons["full-ft"] == ("latency_p95_ms 812 ms > 500 ms", "train_cost 3.2 > 1",
                                  "forgetting_delta -0.2 < -0.02")
    assert reasons["lora"] == ("cost_per_1k_requests 0.25 > 0.1",)
    assert reasons["zero-shot"] == (
        "latency_p95_ms not measured (run suites/test_latency.py)",
        "cost_per_1k_requests not measured (run suites/test_latency.py)",
        "forgetting_delta not measured (run suites/test_forgetting.py)")
    assert set(reasons) == {"full-ft", "lora", "zero-shot"}
    assert found.best is c["rag"]  # the best of the candidates left, not full-ft
    assert found.choice is c["rag"]  # few-shot's -0.06 is beyond the 0.05 margin
    assert "full-ft excluded: latency_p95_ms 812 ms > 500 ms; train_cost" in found.sentence
    assert "lora excluded: cost_per_1k_requests 0.25 > 0.1." in found.sentence
    assert found.rule.startswith("requirements first (latency_p95_ms <= 500 ms; "
                                 "cost_per_1k_requests <= 0.1; train_cost <= 1; "
                                 "forgetting_delta >= -0.02)")
    table = verdict_table(found).set_index("candidate")
    assert table.at["full-ft", "good enough"].startswith("excluded: latency_p95_ms 812 ms")


def test_the_sentence_reports_the_choice_against_the_best():
    c = measured_candidates()
    found = recommend([c["rag"], c["few-shot"]], "accuracy", margin=0.13)
    assert found.choice is c["few-shot"] and found.best is c["rag"]
    assert "is good enough against the best candidate, rag (RAG, 0.860 [" in found.sentence
    assert ("paired difference -0.060 [-0.120, +0.000] on 100 shared items, McNemar p = 0.11; "
            "non-inferior: the CI's lower bound -0.120 is above -0.13; at a cheaper kind of "
            "adaptation") in found.sentence
    assert not recommend([c["rag"], c["few-shot"]], "accuracy", margin=0.07).verdicts[1] \
        .good_enough  # the point estimate, -0.06, is within 0.07; the interval is not


def test_updatable_knowledge_requirement():
    c = measured_candidates()
    needs = Requirements(updatable_knowledge=True)
    found = recommend(list(c.values()), "accuracy", requirements=needs)
    assert found.choice is c["rag"] and found.good_enough == (c["rag"],)
    reasons = {e.name: e.reasons for e in found.excluded}
    assert reasons["lora"] == ("reads_documents 0: knowledge cannot be updated without "
                               "retraining",)
    assert reasons["zero-shot"] == (
        "reads_documents not measured (run suites/test_knowledge_update.py)",)
    stale = Candidate("rag", "rag", 0.8, kind="retrieval", measures={
        "reads_documents": 1.0, "new_facts_after": 0.3, "old_facts_after": 0.5})
    assert Requirements(updatable_knowledge=True).failures(stale.measures) == [
        "new_facts_after 0.3 <= old_facts_after 0.5: still answers with the old facts after "
        "the documents changed"]
    assert Requirements(updatable_knowledge=True).failures({"reads_documents": 1.0}) == []


def test_every_candidate_excluded():
    c = measured_candidates()
    needs = Requirements(max_p95_ms=100)
    found = recommend(list(c.values()), "accuracy", requirements=needs)
    assert found.choice is None and found.best is None and found.good_enough == ()
    assert found.sentence.startswith("No recommendation: every candidate is excluded by the "
                                     "requirements (latency_p95_ms <= 100 ms).")
    for name in c:
        assert f"{name} excluded: latency_p95_ms" in found.sentence
    assert "rag excluded: latency_p95_ms 420 ms > 100 ms" in found.sentence
    assert len(verdict_table(found)) == len(c)


def test_fallback_to_the_two_cis_is_stated():
    # 4,000 items: 0.85 [0.839, 0.861] and 0.845 [0.834, 0.856], so the conservative
    # lower bound (candidate's low minus best's high) is about -0.027
    lora = candidate("lora", hits(range(3400), 4000), seconds=700.0)
    few = candidate("few-shot", hits(range(3380), 4000), keep_items=False)
    found = recommend([few, lora], "accuracy", margin=0.03)
    verdict = found.verdicts[1]
    assert verdict.test == UNPAIRED and verdict.p_value is None
    assert verdict.low == pytest.approx(few.low - lora.high)
    assert verdict.high == pytest.approx(few.high - lora.low)
    assert verdict.good_enough and found.choice is few
    assert ("no per-item rows for few-shot, so the two 95% CIs replaced the paired test: "
            f"difference -0.005, conservatively [{verdict.low:+.3f}, {verdict.high:+.3f}]; "
            f"non-inferior: the conservative lower bound {verdict.low:+.3f} is above -0.03"
            ) in found.sentence
    assert "the fallback on the two CIs was used for few-shot (no per-item rows for few-shot)" \
        in found.rule
    assert not recommend([few, lora], "accuracy").verdicts[1].good_enough  # beyond 0.02
    # on 100 items the two CIs are wide: the fallback cannot show non-inferiority
    small = candidate("few-shot", hits(range(84), 100), keep_items=False)
    assert not judge(small, candidate("lora", hits(range(85), 100))).good_enough
    # without a CI there is no lower bound at all
    bare = Candidate("few-shot", "few-shot", 0.845, kind="prompting")
    assert not judge(bare, lora).good_enough
    assert judge(bare, lora).reason(margin=0.02, alpha=0.05) == (
        "not shown non-inferior: without both 95% CIs there is no lower bound")
    # a fallback for a candidate that is not the choice is stated as well
    lora = candidate("lora", hits(range(85), 100), seconds=700.0)
    zero = candidate("zero-shot", hits(range(40), 100), keep_items=False)
    full = candidate("full-ft", hits(range(85), 100), seconds=900.0)
    found = recommend([zero, full, lora], "accuracy")
    assert found.choice is lora
    assert "zero-shot (no per-item rows for zero-shot, so the two 95% CIs" in found.sentence
    assert verdict_table(found).set_index("candidate").at["zero-shot", "test"] == (
        "unpaired CIs: no per-item rows for zero-shot")
    # without the best's rows every candidate falls back, and says why
    blind = candidate("lora", hits(range(85), 100), seconds=700.0, keep_items=False)
    found = recommend([candidate("few-shot", hits(range(84), 100)), blind], "accuracy")
    assert found.verdicts[1].fallback == "no per-item rows for lora"


def test_bad_settings_are_refused():
    few, lora = paired_200()
    for margin, alpha, match in ((-0.1, 0.05, "margin"), (1.0, 0.05, "margin"),
                                 (0.02, 0.0, "alpha"), (0.02, 1.5, "alpha"),
                                 (float("nan"), 0.05, "margin")):
        with pytest.raises(ValueError, match=match):
            recommend([few, lora], "accuracy", margin=margin, alpha=alpha)
    with pytest.raises(ValueError, match="maximum p95 latency"):
        Requirements(max_p95_ms=-5)
    with pytest.raises(ValueError, match="forgetting_delta"):
        Requirements(min_forgetting=-3)
    with pytest.raises(ValueError, match="finite"):
        Requirements(max_train_cost=float("inf"))


# --- end to end: a database written by the project's store, exported with the flags ---

def _run(store: Store, approach: str, right: set[int] | None, n: int,
         metrics: dict[str, float], rng: random.Random) -> int:
    run = store.start_run(RunRecord(
        session="s", approach=approach, task="qa", model="m", seed=0, budget="smoke",
        config={}, config_hash=f"h-{approach}", data_hash="d", model_version="m1",
        code_version="c", packages={}, device="cpu", kind=KINDS[approach]))
    if right is not None:
        correct = [k in right for k in range(n)]
        acc = accuracy(correct)
        store.add_metric(run, "accuracy", "accuracy", acc.value, low=acc.low, high=acc.high,
                         n=n, higher_is_better=True)
        rows = [{"item_id": f"q{k:03d}", "prompt": f"question {k}", "correct": hit}
                for k, hit in enumerate(correct)]
        rng.shuffle(rows)  # stored out of order: the rule must match items by id
        if approach != "zero-shot":  # an older run without per-item rows
            store.add_examples(run, "accuracy.choice", rows)
    for name, value in metrics.items():
        store.add_metric(run, "latency", name, value)
    store.finish_run(run, "finished")
    return run


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("decision") / "results.db"
    store, rng, n = Store(path), random.Random(0), 200
    base = {"train_cost": 0.0, "forgetting_delta": 0.0, "reads_documents": 0.0}
    _run(store, "full-ft", set(range(150)), n, {**base, "latency_p95_ms": 812.0,
         "cost_per_1k_requests": 0.04, "train_cost": 0.8, "train_seconds": 2900.0}, rng)
    _run(store, "lora", set(range(146)), n, {**base, "latency_p95_ms": 300.0,
         "cost_per_1k_requests": 0.04, "train_cost": 0.5, "train_seconds": 1800.0,
         "forgetting_delta": -0.01}, rng)
    few = set(range(141)) | {146, 147, 148, 149}  # 4 fixed, 5 broken against lora
    _run(store, "few-shot", few, n, {**base, "latency_p95_ms": 250.0,
         "cost_per_1k_requests": 0.05}, rng)
    _run(store, "zero-shot", set(range(120)), n, {**base, "latency_p95_ms": 200.0,
         "cost_per_1k_requests": 0.03}, rng)
    _run(store, "rag", set(range(100)), n, {**base, "latency_p95_ms": 420.0}, rng)
    store.close()
    return path


FLAGS = ["--margin", "0.05", "--alpha", "0.05", "--max-p95-ms", "500", "--max-cost-per-1k",
         "0.1", "--max-train-cost", "1.0", "--min-forgetting", "-0.02"]


def test_export_applies_the_flags_end_to_end(database, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert export.main(["--db", str(database), "--out", str(out), *FLAGS]) == 0
    assert "wrote html report" in capsys.readouterr().out
    page = out.read_text()
    assert "<b>Recommendation:</b> few-shot (prompting, accuracy 0.725 [" in page
    assert "good enough against the best candidate, lora (parameter-efficient" in page
    assert ("paired difference -0.005 [-0.035, +0.025] on 200 shared items, McNemar p = 1; "
            "non-inferior: the CI&#x27;s lower bound -0.035 is above -0.05") in page
    assert "full-ft excluded: latency_p95_ms 812 ms &gt; 500 ms" in page
    assert ("rag excluded: cost_per_1k_requests not measured (run suites/test_latency.py)"
            in page)
    assert ("Requirements: latency_p95_ms &lt;= 500 ms; cost_per_1k_requests &lt;= 0.1; "
            "train_cost &lt;= 1; forgetting_delta &gt;= -0.02.") in page
    assert "the fallback on the two CIs was used for zero-shot (no per-item rows for zero-shot)" \
        in page
    assert "<th>McNemar p</th>" in page and "paired (200 items)" in page
    assert "<script" not in page


def test_export_markdown_says_when_every_candidate_is_excluded(database, tmp_path):
    out = tmp_path / "report.md"
    assert export.main(["--db", str(database), "--out", str(out), "--updatable-knowledge"]) == 0
    text = out.read_text()
    assert ("**Recommendation:** No recommendation: every candidate is excluded by the "
            "requirements (knowledge updatable without retraining") in text
    assert "- lora excluded: reads_documents 0: knowledge cannot be updated" in text


def test_report_without_item_loader_falls_back_everywhere(database):
    conn = data.connect(database)
    try:
        long = data.metrics(conn)
        assert set(example_data.correctness_by_run(conn, long["run_id"].unique().tolist(),
                                           "accuracy.choice")) == {1, 2, 3, 5}
        _, found, metric = report(long, margin=0.05)
        assert metric == "accuracy" and {v.test for v in found.verdicts[1:]} == {UNPAIRED}
        assert "no per-item rows for" in found.rule
    finally:
        conn.close()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--margin", "-0.1", "argument --margin: expected a number in [0, 1)"),
    ("--margin", "two", "argument --margin: expected a number in [0, 1)"),
    ("--alpha", "0", "argument --alpha: expected a number in (0, 1)"),
    ("--alpha", "nan", "argument --alpha: expected a number in (0, 1)"),
    ("--max-p95-ms", "-3", "argument --max-p95-ms: expected a number in [0, inf]"),
    ("--max-cost-per-1k", "cheap", "argument --max-cost-per-1k: expected a number"),
    ("--min-forgetting", "-2", "argument --min-forgetting: expected a number in [-1, 1]"),
])
def test_bad_flag_values_are_refused_clearly(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as stop:
        export.main(["--out", str(tmp_path / "r.html"), flag, value])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_help_explains_each_flag(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no line breaks inside the phrases checked
    with pytest.raises(SystemExit):
        export.main(["--help"])
    shown = capsys.readouterr().out
    for flag in ("--margin", "--alpha", "--max-p95-ms", "--max-cost-per-1k",
                 "--max-train-cost", "--updatable-knowledge", "--min-forgetting"):
        assert flag in shown
    assert "McNemar" in shown and "not measured" in shown


def test_an_adaptively_stopped_candidate_is_judged_by_the_confidence_sequence():
    """A bootstrap CI on items whose number was chosen by looking at them is no 95% interval;
    the rule takes the paired difference's confidence sequence instead, in scoring order."""
    from harness.measure.sequential import difference_sequence

    rng = random.Random(11)
    order = [f"q{k:03d}" for k in rng.sample(range(600), 600)]  # the order they were scored in
    best = {item: rng.random() < 0.9 for item in order}
    mine = {item: best[item] if rng.random() < 0.97 else not best[item] for item in order}
    lora = candidate("lora", best, seconds=600.0)
    few = candidate("few-shot", mine)
    bootstrap = judge(few, lora, margin=0.05)
    stopped = judge(replace(few, sequential=True), lora, margin=0.05)
    expected = difference_sequence([float(v) for v in mine.values()],
                                   [float(best[i]) for i in mine])
    assert not bootstrap.sequential and stopped.sequential
    assert (stopped.low, stopped.high) == pytest.approx((expected.low, expected.high))
    assert stopped.low < bootstrap.low and stopped.high > bootstrap.high  # the price of looking
    assert stopped.difference == bootstrap.difference and stopped.shared == 600
    assert "(confidence sequence) on 600 shared items" in stopped.evidence()
    assert bootstrap.good_enough and not stopped.good_enough  # -0.05 lies between the two lows
    assert judge(few, replace(lora, sequential=True), margin=0.05).sequential  # either side
