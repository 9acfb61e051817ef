"""Every dashboard page, run with Streamlit's ``AppTest`` (the app test framework) through the
``st.navigation`` entry file and ``AppTest.switch_page``, on the sample database, on an
empty one, on a missing file and on one that lacks most metrics."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from harness.runner.store import RunRecord, Store
from reports.data import ENV_VAR
from reports.sample import write_sample

APP = Path(__file__).resolve().parent.parent / "reports" / "app.py"
PAGES = ["leaderboard", "pareto", "sweeps", "decision", "curves", "forgetting", "latency",
         "examples", "provenance", "data_quality"]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "sample.db"
    write_sample(path)
    return path


def open_page(monkeypatch: pytest.MonkeyPatch, db: Path, page: str) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(db))
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    app.switch_page(f"app_pages/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    """Everything a person would read: text elements, tables, alerts and metrics."""
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "success", "error",
                                  "subheader") for e in getattr(app, kind)]
    parts += [frame.value.to_string() for frame in app.dataframe]
    parts += [f"{m.label} {m.value}" for m in app.metric]
    return "\n".join(str(p) for p in parts)


def chart_titles(app: AppTest) -> list[str]:
    return [str(json.loads(c.proto.spec).get("title")) for c in app.get("vega_lite_chart")]


def test_leaderboard(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "leaderboard")
    table = app.dataframe[0].value
    assert table["candidate"].tolist()[:5] == ["full-ft", "lora", "qlora", "few-shot",
                                               "zero-shot"]
    sentiment = table[table["task"] == "sentiment"].set_index("candidate")["tied with best"]
    assert sentiment.to_dict() == {"full-ft": True, "lora": True, "qlora": True,
                                   "few-shot": True, "zero-shot": False}
    assert table.loc[table["task"] == "kb-qa", "tied with best"].isna().all()  # no accuracy
    assert "[0.750, 0.975]" in table["accuracy CI"].tolist()
    assert "sorted by accuracy (higher is better)" in texts(app)
    assert chart_titles(app) == ["accuracy"]
    app.multiselect(key="leaderboard-task").set_value(["kb-qa"]).run()
    table = app.dataframe[0].value
    assert set(table["candidate"]) == {"rag", "zero-shot"}
    app.checkbox(key="leaderboard-side").check().run()
    app.multiselect(key="leaderboard-task").set_value(["sentiment"]).run()
    assert "lora (n=8)" in set(app.dataframe[0].value["candidate"])


def test_leaderboard_names_sweep_points(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "leaderboard")
    app.multiselect(key="leaderboard-task").set_value(["prefs"]).run()
    app.multiselect(key="leaderboard-metrics").set_value(["judge_reward", "kl_to_base"]).run()
    table = app.dataframe[0].value
    assert table["candidate"].value_counts().to_dict() == {  # one row per seed
        "dpo[beta=0.01]": 2, "dpo[beta=0.1]": 2, "dpo[beta=0.5]": 2, "rlhf[beta=0.05]": 2,
        "rlhf[beta=0.2]": 2, "zero-shot": 1}
    assert table["candidate"].iloc[0] == "dpo[beta=0.01]"  # the highest judge_reward
    assert table["candidate"].iloc[-1] == "zero-shot"


def test_pareto(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "pareto")
    assert "**Pareto frontier** (2 of 5): zero-shot, full-ft" in texts(app)
    assert chart_titles(app) == ["accuracy vs latency_p50_ms"]
    spec = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert {layer["mark"]["type"] for layer in spec["layer"]} >= {"line", "point", "rule"}
    app.selectbox(key="pareto-x metric").select("train_seconds").run()
    assert "**Pareto frontier** (2 of 3): lora, full-ft" in texts(app)  # qlora dominated


def test_decision(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "decision")
    sentence = app.success[0].value
    assert ("full-ft (full fine-tuning) is the best on accuracy (0.875 [0.750, 0.975]) and no "
            "other candidate is good enough") in sentence
    assert "few-shot (paired difference -0.075 [" in sentence  # beyond the 0.02 margin
    shown = texts(app)
    assert "Rule applied: take the best candidate on accuracy" in shown
    assert "**Requirements:** none set" in shown
    verdicts = app.dataframe[0].value.set_index("candidate")
    assert verdicts.at["few-shot", "test"] == "paired (40 items)"
    assert verdicts.at["full-ft", "chosen"] == "yes"
    table = app.dataframe[1].value.set_index("aspect")
    assert table.at["initial cost: train_seconds", "lora"] == "812"
    assert table.at["updatable knowledge: new_facts_after", "few-shot"] == "not measured"
    app.selectbox(key="decision-task").select("kb-qa").run()
    assert "rag (RAG) is the best on gen_accuracy" in app.success[0].value
    assert "no per-item rows for zero-shot and rag" in app.success[0].value  # the fallback
    app.selectbox(key="decision-task").select("sentiment").run()

    app.number_input(key="decision-margin").set_value(0.08).run()  # 40 items: too few to show
    assert "the CI's lower bound -0.225 is below -0.08" in app.success[0].value
    app.number_input(key="decision-margin").set_value(0.25).run()
    sentence = app.success[0].value
    assert ("few-shot (prompting, accuracy 0.800 [0.675, 0.925]) is good enough against the "
            "best candidate, full-ft") in sentence
    assert "McNemar p = 0.55" in sentence and sentence.endswith("prompt, with few-shot.")
    app.number_input(key="decision-max-p95-ms").set_value(200.0).run()
    sentence = app.success[0].value
    assert "fine-tune parameter-efficiently, with lora." in sentence
    assert "few-shot excluded: latency_p95_ms 252 ms > 200 ms." in sentence
    assert "qlora excluded: latency_p95_ms 336 ms > 200 ms" in texts(app)
    assert "**Requirements:** latency_p95_ms <= 200 ms" in texts(app)
    app.checkbox(key="decision-updatable").check().run()
    assert not app.success
    warning = app.warning[0].value
    assert "every candidate is excluded by the requirements" in warning
    assert "lora excluded: reads_documents not measured (run suites/test_knowledge_update.py)" \
        in warning


def test_curves(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "curves")
    assert chart_titles(app) == ["loss per training step", "data efficiency"]
    assert len(app.multiselect(key="curves-candidates").value) == 3  # lora, qlora, full-ft
    efficiency = app.dataframe[0].value
    assert efficiency["train_examples"].tolist() == [8, 16]


def test_forgetting(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "forgetting")
    shown = texts(app)
    assert "-0.200 [-0.280, -0.140]" in shown and "full-ft" in shown
    assert chart_titles(app)[0].startswith("probe accuracy change")
    readings = dict(app.dataframe[0].value.itertuples(index=False))
    assert readings["full-ft"].startswith("forgets on chat probes -0.200")
    flipped = app.dataframe[2].value
    assert set(flipped["flip"]) == {"fixed", "broken"}
    app.radio(key="forgetting-flip").set_value("fixed").run()
    assert set(app.dataframe[2].value["flip"]) == {"fixed"}


def test_latency(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "latency")
    titles = chart_titles(app)
    assert {"ms per request", "per-request latency", "merged adapter vs unmerged",
            "4-bit vs dequantized", "peak bytes"} <= set(titles)
    assert "No retrieval vs generation recorded" in texts(app)
    assert "latency_p99_ms" in app.dataframe[0].value.columns
    app.selectbox(key="latency-task").select("kb-qa").run()
    assert "retrieval vs generation" in chart_titles(app)


def test_examples(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "examples")
    assert app.selectbox(key="examples-a").value is not None
    assert "40 matching items; showing 1-40" in texts(app)
    app.radio(key="examples-correct").set_value("wrong").run()
    assert (app.dataframe[0].value["correct"] == 0).all()
    app.text_input(key="examples-search").input("Review 3:").run()
    assert app.dataframe[0].value["item_id"].tolist() in ([], ["s003"])
    metrics = {m.label: m.value for m in app.metric}
    assert set(metrics) >= {"fixed (A wrong, B right)", "broken (A right, B wrong)",
                            "McNemar p"}
    assert "Paired comparison (harness.measure.compare)" in texts(app)
    pairs = app.dataframe[1].value  # classification rows keep their side-by-side columns
    assert list(pairs.columns) == ["item_id", "prompt", "reference", "prediction_a",
                                   "correct_a", "prediction_b", "correct_b"]


def test_examples_of_free_replies_compare_on_any_metric(monkeypatch, tmp_path):
    """An open task: replies, references and per-item metrics in the table; candidates
    compared on the run's headline metric (F1) largest disagreement first, with the paired
    randomisation test; on ``correct`` with McNemar's; a run whose headline metric was not
    recorded per item opens on ``correct``."""
    from tests.test_examples_page import open_task_store

    ids = open_task_store(tmp_path / "open.db")  # the page opens on lora (the newest) as A
    app = open_page(monkeypatch, tmp_path / "open.db", "examples")
    app.selectbox(key="examples-suite").select("accuracy.generation").run()
    table = app.dataframe[0].value
    assert list(table.columns) == ["item_id", "prompt", "reply", "reference", "correct", "f1",
                                   "model_ms"]
    assert table["reply"].iloc[2] == "B reply 2" and table["reference"].iloc[2] == "answer 2"
    metric = app.selectbox(key=f"examples-metric-{ids['lora']}-accuracy.generation")
    assert metric.value == "f1" and metric.options == ["correct", "f1", "model_ms"]
    pairs = app.dataframe[1].value
    assert pairs["item_id"].tolist()[:3] == ["q2", "q0", "q1"]  # B - A: +0.8, -0.1, +0.1
    assert pairs.iloc[0][["reply_a", "reply_b", "difference"]].tolist() == [
        "B reply 2", "A reply 2", 0.8]
    boxes = {m.label: m.value for m in app.metric}
    assert {k: boxes[k] for k in ("B better", "B worse", "ties")} == {
        "B better": "2", "B worse": "3", "ties": "1"}
    assert "paired randomisation test p" in boxes and "McNemar p" not in boxes
    assert "in f1 (6 items)" in " ".join(boxes) and "p from paired randomisation test" in \
        texts(app)
    app.radio(key="examples-order").set_value("item order").run()
    assert app.dataframe[1].value["item_id"].iloc[0] == "q0"
    app.radio(key="examples-only").set_value("broken").run()
    assert set(app.dataframe[1].value["item_id"]) == {"q0", "q3", "q4"}  # B's F1 lower
    metric.set_value("correct").run()
    boxes = {m.label: m.value for m in app.metric}
    assert boxes["McNemar p"] == "1" and boxes["fixed (A wrong, B right)"] == "1"
    assert "B better" not in boxes and "p from McNemar's exact test" in texts(app)
    assert app.dataframe[1].value.empty  # no item A got right and B wrong
    app.selectbox(key="examples-a").set_value(ids["zero-shot"]).run()
    assert app.selectbox(
        key=f"examples-metric-{ids['zero-shot']}-accuracy.generation").value == "correct"


def test_leaderboard_and_pareto_open_on_the_recorded_headline(monkeypatch, tmp_path):
    """Runs of an open task whose user chose chrF: the leaderboard ranks by it and the Pareto
    view plots it, though gen_accuracy (ranked higher by the catalogue) is recorded too."""
    store = Store(tmp_path / "open.db")
    for approach, chrf, latency in (("zero-shot", 0.3, 20.0), ("lora", 0.6, 25.0)):
        run = store.start_run(RunRecord(
            session="s", approach=approach, task="mine", model="m", seed=0, budget="quick",
            config={}, config_hash=approach, data_hash="d", model_version="m",
            code_version="c", packages={}, device="cpu", kind="prompting"))
        store.update_info(run, {"headline_metric": "chrf"})
        for name, value in (("gen_accuracy", 0.01), ("chrf", chrf), ("latency_p50_ms", latency)):
            store.add_metric(run, "accuracy", name, value, low=value, high=value, n=10)
        store.finish_run(run, "finished")
    store.close()
    board = open_page(monkeypatch, tmp_path / "open.db", "leaderboard")
    assert board.selectbox(key="leaderboard-chosen").value == "chrf"
    assert board.multiselect(key="leaderboard-metrics").value[0] == "chrf"
    assert board.dataframe[0].value["candidate"].tolist()[0] == "lora"
    pareto = open_page(monkeypatch, tmp_path / "open.db", "pareto")
    assert pareto.selectbox(key="pareto-y metric").value == "chrf"
    assert chart_titles(pareto) == ["chrf vs latency_p50_ms"]


def test_provenance(monkeypatch, sample_db):
    app = open_page(monkeypatch, sample_db, "provenance")
    assert "**22 runs**; **1 stale**" in texts(app)  # 11 + the prefs sweep's 11
    runs = app.dataframe[0].value
    assert runs.loc[runs["stale"], "code_version"].tolist() == ["git:0ld0001"]
    assert "RuntimeError: out of memory" in runs["error"].fillna("").str.cat()


def test_data_check(monkeypatch, tmp_path):
    """Findings of the data check alone (no run yet): the table, and each finding's rows."""
    from harness.data.quality import cheap_findings, store_findings
    from harness.tasks.base import Example, TaskData

    def item(line: int, text: str, answer: str) -> Example:
        return Example(f"i{line}", ({"role": "user", "content": text},), answer,
                       meta={"source": f"mine.jsonl:{line}"})

    train = [item(k, f"question number {k} about topic {k * 7}", "a b") for k in range(1, 9)]
    train += [item(9, "Question number 1 about topic 7!", "a b")]
    data = TaskData("mine", train, [], [item(20, "what else is there", "c")])
    store = Store(tmp_path / "checked.db")
    store_findings(store, "s1", data, cheap_findings(data))
    store.close()
    app = open_page(monkeypatch, tmp_path / "checked.db", "data_quality")
    table = app.dataframe[0].value.set_index("name")
    assert table.loc["duplicate_items", "count"] == 1
    assert table.loc["near_duplicates", "count"] == 0
    assert "**1 of 6 findings** to review" in texts(app)
    assert [e.label for e in app.expander] == ["duplicate_items: 1"]
    rows = app.dataframe[1].value
    assert rows["source"].tolist() == ["mine.jsonl:9"] and rows["matches"][0] == "mine.jsonl:1"


@pytest.mark.parametrize("checked", [True, False], ids=["with-findings", "suspects-only"])
def test_data_check_shows_each_candidates_suspect_labels(monkeypatch, tmp_path, checked):
    """Per candidate: how many answers it finds unlikely, their rows with file:line, and the
    detector's precision and recall against injected label noise; also in a file whose data
    was never checked (only ``-k suspect`` ran)."""
    from harness.data.quality import cheap_findings, store_findings
    from harness.tasks.base import Example, TaskData

    train = [Example(f"i{k}", ({"role": "user", "content": f"item {k} text {k * 3}"},), "a",
                     meta={"source": f"mine.jsonl:{k}"}) for k in range(1, 6)]
    store = Store(tmp_path / "suspect.db")
    if checked:
        store_findings(store, "s1", TaskData("mine", train, [], []), cheap_findings(
            TaskData("mine", train, [], [])))
    run = store.start_run(RunRecord(
        session="s1", approach="zero-shot", task="mine", model="m", seed=0, budget="quick",
        config={}, config_hash="c", data_hash="d", model_version="v", code_version="git:x",
        packages={}, device="cpu", kind="prompting"))
    store.add_metric(run, "data_quality", "suspect_labels", 2, higher_is_better=None,
                     extra={"scored": 5, "in_sample": False})
    store.add_metric(run, "overfitting", "noise_detection_recall[0.2]", 0.5, low=0.1,
                     high=0.9, n=2, higher_is_better=True, extra={"label_noise": 0.2,
                                                                  "flagged": 3})
    store.add_examples(run, "data_quality.suspect_labels", [
        {"item_id": f"i{k}", "prompt": f"item {k}", "prediction": "b", "reference": "a",
         "correct": None, "score": 0.1 * k, "extra": {"source": f"mine.jsonl:{k}"}}
        for k in (4, 2)])
    store.finish_run(run, "finished")
    store.close()
    app = open_page(monkeypatch, tmp_path / "suspect.db", "data_quality")
    assert not app.exception, [e.value for e in app.exception]
    tables = [d.value for d in app.dataframe]
    flagged = next(t for t in tables if "flagged" in t.columns and "scored" in t.columns)
    assert flagged.to_dict("records") == [{"candidate": "zero-shot", "flagged": 2, "scored": 5,
                                           "in-sample": False}]
    rows = next(t for t in tables if "given" in t.columns)
    assert rows["source"].tolist() == ["mine.jsonl:4", "mine.jsonl:2"]
    detection = next(t for t in tables if "measure" in t.columns)
    assert detection.to_dict("records")[0] == {
        "candidate": "zero-shot", "noise": 0.2, "measure": "recall", "value": 0.5,
        "ci_low": 0.1, "ci_high": 0.9, "n": 2, "flagged": 3}
    assert "zero-shot: 2 least likely answers" in [e.label for e in app.expander]


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_says_how_to_fill_it(monkeypatch, tmp_path, page):
    Store(tmp_path / "empty.db").close()
    app = open_page(monkeypatch, tmp_path / "empty.db", page)
    message = app.info[0].value
    assert "no runs yet" in message and "make bench" in message
    assert "pytest suites/ --approach=" in message


def test_missing_file(monkeypatch, tmp_path):
    app = open_page(monkeypatch, tmp_path / "none.db", "leaderboard")
    assert "No results database yet" in app.info[0].value and "make bench" in app.info[0].value
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("page", PAGES)
def test_database_without_the_pages_metrics(monkeypatch, tmp_path, page):
    store = Store(tmp_path / "thin.db")
    run = store.start_run(RunRecord(
        session="s", approach="zero-shot", task="sentiment", model="m", seed=0, budget="smoke",
        config={}, config_hash="h", data_hash="d", model_version="m", code_version="c",
        packages={}, device="cpu"))
    store.add_metric(run, "retrieval", "hit_at_k", 0.5, higher_is_better=True)
    store.finish_run(run, "finished")
    store.close()
    app = open_page(monkeypatch, tmp_path / "thin.db", page)
    shown = texts(app)
    if page in {"leaderboard", "provenance"}:
        assert "zero-shot" in shown
    elif page == "sweeps":
        assert "No sweeps recorded" in shown, shown
    else:
        assert "recorded for this selection" in shown, shown


def test_launcher_binds_localhost():
    from reports.__main__ import command

    line = command(["--db", "x.db"])
    assert line[line.index("--server.address") + 1] == "localhost"
    assert line[-3:] == ["--", "--db", "x.db"]
    assert "--" not in command([])
    config = (APP.parent / ".streamlit" / "config.toml").read_text()
    assert 'address = "localhost"' in config  # plain `streamlit run` binds localhost too


@pytest.mark.slow  # opens every page on two broken files (seconds)
def test_not_a_results_database(monkeypatch, tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not SQLite" * 100)
    app = open_page(monkeypatch, tmp_path / "junk.db", "leaderboard")
    assert "not a readable tunebench results database" in app.error[0].value
    partial = sqlite3.connect(tmp_path / "partial.db")
    partial.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, task TEXT)")
    partial.execute("INSERT INTO runs (task) VALUES ('sentiment')")
    partial.commit()
    partial.close()
    for page in PAGES:
        app = open_page(monkeypatch, tmp_path / "partial.db", page)
        assert "Is it a tunebench results database" in app.error[0].value, page
