"""The dashboard's data layer: read-only loading, leaderboard, ties, Pareto, staleness, the
decision rule and the static export, on databases written with ``harness.runner.store.Store``."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from harness.measure.compare import pair_by_id, paired_comparison
from harness.runner.store import RunRecord, Store
from reports import analysis, data, decision, example_data, export, sweep_data
from reports.sample import write_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("reports") / "sample.db"
    return path, write_sample(path)


@pytest.fixture
def conn(sample):
    connection = data.connect(sample[0])
    yield connection
    connection.close()


def record(approach: str, *, task: str = "t", code: str = "c1", data_hash: str = "d1",
           config: dict | None = None) -> RunRecord:
    return RunRecord(session="s", approach=approach, task=task, model="m", seed=0,
                     budget="smoke", config=config or {}, config_hash=f"h-{approach}",
                     data_hash=data_hash, model_version="m1", code_version=code,
                     packages={}, device="cpu")


def test_resolve_path_prefers_db_argument_then_environment():
    env = {data.ENV_VAR: "env.db"}
    assert data.resolve_path(["--db", "a.db"], env) == Path("a.db")
    assert data.resolve_path(["--db=b.db"], env) == Path("b.db")
    assert data.resolve_path([], env) == Path("env.db")
    assert data.resolve_path([], {}) == data.DEFAULT_DB


def test_connection_is_read_only(sample, conn):
    before = hashlib.sha256(sample[0].read_bytes()).hexdigest()
    for statement in ("INSERT INTO runs (session) VALUES ('x')", "DELETE FROM metrics",
                      "CREATE TABLE evil (x)", "UPDATE runs SET status = 'failed'"):
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
            conn.execute(statement)
    assert hashlib.sha256(sample[0].read_bytes()).hexdigest() == before


def test_missing_and_empty_databases(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.connect(tmp_path / "nope.db")
    (tmp_path / "blank.db").write_bytes(b"")
    assert data.run_count(data.connect(tmp_path / "blank.db")) == 0
    Store(tmp_path / "schema-only.db").close()
    conn = data.connect(tmp_path / "schema-only.db")
    assert data.run_count(conn) == 0
    assert data.metrics(conn).empty and data.metric_catalog(conn).empty
    assert data.runs(conn).empty and data.curve_run_ids(conn) == []


def test_leaderboard_rows_cis_and_ties(conn, sample):
    long = data.metrics(conn, filters={"task": ["sentiment"]})
    assert sample[1]["few-shot (stale)"] not in set(long["run_id"])  # latest run only
    everything = data.metrics(conn, filters={"task": ["sentiment"]}, latest_only=False)
    assert sample[1]["few-shot (stale)"] in set(everything["run_id"])
    long = long[long["train_examples"].isna()]
    table = analysis.leaderboard(long, ["accuracy", "latency_p50_ms", "overfit_verdict"],
                                 "accuracy")
    assert table["candidate"].tolist() == ["full-ft", "lora", "qlora", "few-shot", "zero-shot"]
    assert {"accuracy", "accuracy CI", "latency_p50_ms CI", "tied with best"} <= set(table)
    row = table.set_index("candidate").loc["lora"]
    assert row["accuracy"] == pytest.approx(0.85) and row["accuracy CI"].startswith("[0.7")
    assert row["overfit_verdict"] == "ok"
    tied = dict(zip(table["candidate"], table["tied with best"], strict=True))
    assert tied == {"full-ft": True, "lora": True, "qlora": True, "few-shot": True,
                    "zero-shot": False}
    lower = analysis.leaderboard(long, ["latency_p50_ms"], "latency_p50_ms")
    assert lower["candidate"].iloc[0] == "zero-shot"  # lower latency is better: ranked first


def test_side_runs_and_sweep_points_are_labelled(conn, sample):
    runs = data.runs(conn).set_index("run_id")
    labels = set(runs["label"])
    assert {"lora (n=8)", "lora (n=16)", "few-shot"} <= labels
    ids = sample[1]
    assert runs.at[ids["dpo[beta=0.1] seed=1"], "label"] == "dpo[beta=0.1]"
    assert runs.at[ids["rlhf[beta=0.05] seed=0"], "label"] == "rlhf[beta=0.05]"
    assert runs.at[ids["zero-shot prefs"], "label"] == "zero-shot"
    prefs = data.metrics(conn, names=["kl_to_base"], filters={"task": ["prefs"]})
    assert prefs["label"].nunique() == 6  # 3 dpo points, 2 rlhf points and the base model


def test_pages_open_on_the_task_with_most_runs_that_are_no_sweep_points(conn):
    # prefs has 11 runs (10 of them sweep cells), sentiment 9
    assert data.busiest_task(conn) == "sentiment"


def test_sample_sweep_is_plausible(conn):
    points = sweep_data.sweep_points(conn)
    assert sweep_data.sweep_catalog(conn)[["sweep", "points", "seeds"]].values.tolist() == [
        ["dpo[beta]", 3, 2], ["rlhf[beta]", 2, 2]]
    means = sweep_data.sweep_means(sweep_data.sweep_axis(points, "beta"))
    for name in ("kl_to_base", "judge_reward", "win_rate_vs_base"):
        for series in ("dpo", "rlhf"):
            line = means[(means["name"] == name) & (means["series"] == series)]
            assert line["value"].is_monotonic_decreasing, (name, series)  # higher beta, lower
            assert ((line["ci_low"] < line["value"]) & (line["value"] < line["ci_high"])).all()


def test_pareto_frontier_hand_made():
    x = [1.0, 2.0, 3.0, 0.5, 2.0, float("nan")]
    y = [1.0, 2.0, 1.0, 3.0, 1.5, 9.0]
    assert analysis.pareto_frontier(x, y, x_higher=True, y_higher=True).tolist() == [
        False, True, True, True, False, False]
    # x lower is better (latency): the cheapest point joins the frontier, the slowest leaves
    assert analysis.pareto_frontier(x, y, x_higher=False, y_higher=True).tolist() == [
        False, False, False, True, False, False]
    # equal points do not dominate each other
    assert analysis.pareto_frontier([1, 1], [1, 1], x_higher=True, y_higher=True).all()


def test_pareto_table_respects_directions(conn):
    long = data.metrics(conn, names=["accuracy", "latency_p50_ms"],
                        filters={"task": ["sentiment"]})
    table = analysis.pareto_table(long, "latency_p50_ms", "accuracy", False, True)
    assert set(table.loc[table["frontier"], "candidate"]) == {"zero-shot", "full-ft"}
    assert {"x_low", "y_high"} <= set(table)


def test_stale_runs(conn, sample):
    runs = data.runs(conn)
    stale = runs.loc[analysis.stale_runs(runs), "run_id"].tolist()
    assert stale == [sample[1]["few-shot (stale)"]]
    frame = pd.DataFrame({
        "run_id": [1, 2, 3, 4, 5], "approach": ["a", "a", "a", "b", "b"],
        "task": "t", "model": "m", "seed": 0, "budget": "quick",
        "config_hash": ["h", "h", "h", "x", "y"], "code_version": ["v1", "v2", "v1", "v1", "v2"],
        "data_hash": "d", "started_at": [1.0, 2.0, 3.0, 4.0, 5.0]})
    # a newer run with other code makes older ones stale; another config does not
    assert analysis.stale_runs(frame).tolist() == [True, True, False, False, False]
    frame["code_version"] = "v1"
    frame.loc[2, "data_hash"] = "d2"
    assert analysis.stale_runs(frame).tolist() == [True, True, False, False, False]


def test_stale_runs_match_the_definition_on_random_histories():
    rng = random.Random(1)
    frame = pd.DataFrame({
        "run_id": range(300), "approach": [rng.choice("ab") for _ in range(300)],
        "task": "t", "model": "m", "seed": [rng.randint(0, 1) for _ in range(300)],
        "budget": "quick", "config_hash": "h",
        "code_version": [rng.choice(["v1", "v2"]) for _ in range(300)],
        "data_hash": [rng.choice(["d1", "d2"]) for _ in range(300)],
        "started_at": [rng.random() for _ in range(300)]})
    keys = ["approach", "seed"]
    expected = [any(
        (o["code_version"], o["data_hash"]) != (r["code_version"], r["data_hash"])
        for _, o in frame.iterrows()
        if all(o[k] == r[k] for k in keys) and o["started_at"] > r["started_at"])
        for _, r in frame.iterrows()]
    assert analysis.stale_runs(frame).tolist() == expected


def test_decision_rule_prefers_cheap_when_tied_and_better_when_clear():
    # tight CIs (a large eval set): the fallback's conservative bound is low minus high
    few = decision.Candidate("few-shot", "few-shot", 0.83, 0.82, 0.84, kind="prompting")
    lora = decision.Candidate("lora", "lora", 0.84, 0.835, 0.845, train_seconds=812.0,
                              kind="parameter-efficient")
    # no per-item rows: the fallback on the two CIs, stated (tests/test_decision_rule.py has more)
    tied = decision.recommend([lora, few], "accuracy", margin=0.05)
    assert tied.choice is few and tied.best is lora
    assert "the two 95% CIs replaced the paired test" in tied.sentence
    assert "the conservative lower bound -0.025 is above -0.05" in tied.sentence
    assert "no training cost" in tied.sentence
    assert tied.sentence.endswith("prompt, with few-shot.")
    assert "cheapest" in tied.rule
    assert decision.recommend([lora, few], "accuracy").choice is lora  # -0.025: beyond 0.02
    clear = decision.recommend([decision.Candidate("few-shot", "few-shot", 0.6, 0.55, 0.65,
                                                   kind="prompting"),
                                lora], "accuracy")
    assert clear.choice is lora and clear.good_enough == (lora,)
    assert "no other candidate is good enough" in clear.sentence
    full = decision.Candidate("full-ft", "full-ft", 0.845, 0.84, 0.85, train_seconds=500.0,
                              kind="full fine-tuning")
    assert decision.recommend([full, lora], "accuracy").choice is lora  # cheaper kind first
    qlora = decision.Candidate("qlora", "qlora", 0.83, 0.76, 0.9, train_seconds=1300.0,
                               kind="parameter-efficient")
    pick = decision.recommend([qlora, lora], "accuracy")
    assert pick.choice is lora and "62% of the training time" not in pick.sentence
    assert decision.recommend([], "accuracy") is None


def test_the_rule_reads_declared_kinds_not_names():
    # a plugin named like prompting but declared as preference tuning is costed as declared
    named = decision.Candidate("prompt-tuning", "prompt-tuning", 0.8, 0.795, 0.805,
                               kind="preference")
    lora = decision.Candidate("lora", "lora", 0.8, 0.795, 0.805, train_seconds=900.0,
                              kind="parameter-efficient")
    found = decision.recommend([named, lora], "accuracy")
    assert found.choice is lora and len(found.good_enough) == 2  # both good enough
    unknown = decision.Candidate("old-run", "old-run", 0.8, 0.795, 0.805)  # no kind recorded
    assert decision.recommend([unknown, lora], "accuracy").choice is lora


def test_headline():
    assert decision.headline_metric(["gen_accuracy", "accuracy"]) == "accuracy"
    assert decision.headline_metric(["f1", "gen_accuracy"]) == "gen_accuracy"
    assert decision.headline_metric(["f1"]) == "f1"
    assert decision.headline_metric(["chrf", "gen_accuracy"], ["chrf", None]) == "chrf"
    assert decision.headline_metric(["gen_accuracy"], ["chrf"]) == "gen_accuracy"  # unmeasured
    assert decision.headline_metric(["exact_match"]) == "exact_match"
    assert decision.headline_metric(["latency_p50_ms"]) is None


def test_decision_report_on_database(conn):
    long = data.metrics(conn, filters={"task": ["sentiment"]})
    configs = data.run_configs(conn, long["run_id"].unique().tolist())
    def items(suite, ids, value):
        return example_data.item_scores_by_run(conn, ids, suite, value)

    table, found, metric = decision.report(long, configs, items=items)
    assert metric == "accuracy" and found.choice.name == found.best.name == "full-ft"
    assert {v.test for v in found.verdicts[1:]} == {"paired"}  # every one beyond the margin
    # 40 items: at 0.08 few-shot (-0.075, McNemar p = 0.55) is not shown non-inferior, its
    # paired CI reaching -0.225; only a margin beyond that lets the cheap candidate through
    _, strict, _ = decision.report(long, configs, items=items, margin=0.08)
    assert strict.choice.name == "full-ft"
    assert "the CI's lower bound -0.225 is below -0.08" in strict.sentence
    _, lenient, _ = decision.report(long, configs, items=items, margin=0.25)
    assert lenient.choice.name == "few-shot" and lenient.best.name == "full-ft"
    assert "2,400 s" in lenient.sentence and "on 40 shared items" in lenient.sentence
    cells = table.set_index("aspect")
    assert list(cells.columns[:2]) == ["few-shot", "zero-shot"]  # cheapest kind first
    assert cells.at["updatable knowledge: new_facts_after", "lora"] == "not measured"
    assert cells.at["maintenance: retraining needed", "lora"].startswith("yes")
    assert cells.at["data needed", "few-shot"] == "4 labelled examples in the prompt"
    # the sample's full-ft loses 0.2 probe accuracy (CI below zero): the table says so
    assert cells.at["forgetting (probes and perplexity)", "full-ft"].startswith(
        "forgets on chat probes -0.200")
    assert cells.at["forgetting (probes and perplexity)", "lora"].startswith(
        "no significant forgetting; chat probes -0.050")
    assert cells.at["forgetting (probes and perplexity)", "zero-shot"] == "not measured"
    assert "8: 0.550" in cells.at["data needed", "lora"]
    kb = data.metrics(conn, filters={"task": ["kb-qa"]})
    table, found, metric = decision.report(kb)
    assert metric == "gen_accuracy" and found.choice.name == "rag"
    assert table.set_index("aspect").at["maintenance: retraining needed", "rag"].startswith("no")


def test_examples_paging_filters_and_pairs(conn, sample):
    ids = sample[1]
    page, total = example_data.examples_page(conn, ids["lora"], "accuracy.choice", limit=10,
                                             offset=5)
    assert total == 40 and len(page) == 10 and page["item_id"].iloc[0] == "s005"
    wrong, n_wrong = example_data.examples_page(conn, ids["lora"], "accuracy.choice",
                                                correct=False)
    assert n_wrong == 6 and not wrong["correct"].any()
    found, n_found = example_data.examples_page(conn, ids["lora"], "accuracy.choice",
                                                search="Review 7:")
    assert n_found == 1 and found["item_id"].tolist() == ["s007"]
    a, b = (example_data.correctness(conn, ids[n], "accuracy.choice")
            for n in ("zero-shot", "lora"))
    comparison = paired_comparison(*pair_by_id(a, b)[1:])
    _, fixed = example_data.side_by_side(conn, ids["zero-shot"], ids["lora"], "accuracy.choice",
                                 only="fixed")
    _, broken = example_data.side_by_side(conn, ids["zero-shot"], ids["lora"], "accuracy.choice",
                                  only="broken")
    assert (fixed, broken) == (comparison.fixed, comparison.broken)
    assert example_data.example_suites(conn, ids["lora"]) == [
        "accuracy.choice", "forgetting.general", "latency"]


def test_forgetting_latency_and_curves(conn, sample):
    ids = sample[1]
    flips = data.flipped_items(conn, ids["lora"])
    assert sorted(flips["flip"].value_counts().items()) == [("broken", 4), ("fixed", 2)]
    assert set(data.flipped_items(conn, ids["lora"], "fixed")["flip"]) == {"fixed"}
    samples = data.latency_samples(conn, [ids["lora"], ids["few-shot"]], limit_per_run=7)
    assert len(samples) == 14
    curves = data.curves(conn, [ids["lora"]])
    assert set(curves["split"]) == {"train", "validation"} and (curves["name"] == "loss").all()
    assert ids["lora"] in data.curve_run_ids(conn)


def test_export_markdown_and_html(sample, tmp_path):
    assert export.main(["--db", str(sample[0]), "--out", str(tmp_path / "r.md")]) == 0
    markdown = (tmp_path / "r.md").read_text()
    assert "| few-shot |" in markdown and "0.875 [0.750, 0.975]" in markdown
    assert "**Recommendation:** full-ft" in markdown and "Rule applied" in markdown
    assert export.main(["--db", str(sample[0]), "--out", str(tmp_path / "r.html"),
                        "--margin", "0.25"]) == 0
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert "http" not in page and "<script" not in page  # self-contained
    assert "prompt, with few-shot" in page


def test_export_escapes_and_refuses_empty(tmp_path, capsys):
    store = Store(tmp_path / "odd.db")
    run = store.start_run(record("<script>x</script>|y"))
    store.add_metric(run, "accuracy", "accuracy", 0.5, low=0.4, high=0.6, higher_is_better=True)
    store.finish_run(run, "finished")
    store.close()
    export.export(tmp_path / "odd.db", tmp_path / "odd.html")
    assert "<script>x" not in (tmp_path / "odd.html").read_text()
    export.export(tmp_path / "odd.db", tmp_path / "odd.md")
    assert "\\|y" in (tmp_path / "odd.md").read_text()
    Store(tmp_path / "empty.db").close()
    assert export.main(["--db", str(tmp_path / "empty.db"), "--out", str(tmp_path / "e.md")]) == 1
    assert "make bench" in capsys.readouterr().err
    assert not (tmp_path / "e.md").exists()


def test_control_runs_are_never_recommended(conn):
    long = data.metrics(conn, filters={"task": ["sentiment"]})
    best = long.loc[long["approach"] == "full-ft", "run_id"].iloc[0]
    long.loc[long["run_id"] == best, "approach"] = "control-random"  # the best run, as a control
    table, found, _ = decision.report(long)
    assert "control-random" not in {c.name for c in found.considered}
    assert "control-random" not in table.columns and found.best.name != "control-random"


def test_the_decision_table_shows_a_student_against_its_teacher():
    from reports.decision_table import decision_table

    measured = [(1, "latency_p50_ms", 20.0), (1, "teacher_latency_p50_ms", 40.0),
                (1, "latency_speedup", 2.0), (1, "cost_per_1k_requests", 0.01),
                (1, "teacher_cost_per_1k_requests", 0.02), (2, "latency_p50_ms", 30.0)]
    long = pd.DataFrame([{"run_id": run, "name": name, "value": value, "ci_low": None,
                          "ci_high": None, "budget": "quick",
                          "kind": "distillation" if run == 1 else "prompting"}
                         for run, name, value in measured])
    cells = decision_table(long, {1: "full-ft+distill", 2: "zero-shot"}, "accuracy") \
        .set_index("aspect")
    assert cells.at["production latency: latency_p50_ms", "full-ft+distill"] == \
        "20; teacher 40, 2x faster"
    assert cells.at["serving cost: cost_per_1k_requests", "full-ft+distill"] == \
        "0.010; teacher 0.020"
    assert cells.at["production latency: latency_p50_ms", "zero-shot"] == "30"
    assert cells.at["maintenance: retraining needed", "full-ft+distill"].startswith("yes")
