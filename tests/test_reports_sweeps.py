"""Sweeps in the dashboard: point labels, the sweep loader's grouping and order, means over
seeds, the sweep charts and the Sweeps page (Streamlit's ``AppTest``), on databases written
with ``harness.runner.store.Store`` (schema 4, ``RunRecord.sweep``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from harness.runner.store import RunRecord, Store
from reports import analysis, charts, data, sweep_data
from reports.data import ENV_VAR
from reports.sample import write_sample

APP = Path(__file__).resolve().parent.parent / "reports" / "app.py"


def record(approach: str, *, seed: int = 0, sweep: dict | None = None, model: str = "m",
           task: str = "prefs", config: dict | None = None) -> RunRecord:
    config = {**{k.partition(".")[2]: v for k, v in (sweep or {}).items()}, **(config or {})}
    return RunRecord(session="s", approach=approach, task=task, model=model, seed=seed,
                     budget="smoke", config=config,
                     config_hash=f"{approach}-{sorted(config.items())}", data_hash="d",
                     model_version="m1", code_version="c1", packages={}, device="cpu",
                     sweep=sweep or {})


def add_run(store: Store, rec: RunRecord, values: dict[str, float], *,
            status: str = "finished", width: float = 0.1) -> int:
    run = store.start_run(rec)
    for name, value in values.items():
        store.add_metric(run, "preferences", name, value, low=value - width,
                         high=value + width, n=40, higher_is_better=name != "kl_to_base")
    store.finish_run(run, status)
    return run


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dpo over beta (written out of order, 2 seeds), rlhf over beta x learning_rate (1 seed),
    a lora+dpo composition, a failed cell, a dpo sweep on another model, a data-efficiency
    side run of a sweep point and a zero-shot base run."""
    path = tmp_path_factory.mktemp("sweeps") / "matrix.db"
    store = Store(path)
    add_run(store, record("zero-shot"), {"judge_reward": 0.4, "kl_to_base": 0.0})
    for beta, reward, kl in ((10.0, 0.5, 0.2), (0.5, 0.7, 1.5), (2.0, 0.6, 0.8)):
        for seed, shift in ((0, -0.02), (1, 0.02)):
            add_run(store, record("dpo", seed=seed, sweep={"dpo.beta": beta}),
                    {"judge_reward": reward + shift, "kl_to_base": kl})
    for beta in (0.05, 0.2):
        for lr in (1e-4, 5e-5):
            add_run(store, record("rlhf", sweep={"rlhf.beta": beta, "rlhf.learning_rate": lr}),
                    {"judge_reward": 0.6 - beta + lr * 1000, "kl_to_base": 1.0 - beta})
    add_run(store, record("lora+dpo", sweep={"dpo.beta": 0.3}),
            {"judge_reward": 0.65, "kl_to_base": 0.9})
    add_run(store, record("dpo", seed=2, sweep={"dpo.beta": 0.5}), {"judge_reward": 0.1},
            status="failed")
    add_run(store, record("dpo", model="other", sweep={"dpo.beta": 0.5}), {"judge_reward": 0.3})
    side = record("dpo", sweep={"dpo.beta": 0.5}, config={"train_examples": 64})
    add_run(store, side, {"primary_accuracy": 0.5})
    store.close()
    return path


@pytest.fixture
def conn(matrix):
    connection = data.connect(matrix)
    yield connection
    connection.close()


def test_point_labels():
    assert data.point_label("dpo", {"dpo.beta": 0.3}) == "dpo[beta=0.3]"
    assert data.point_label("rlhf", {"rlhf.beta": 0.05, "rlhf.learning_rate": 1e-4}) == \
        "rlhf[beta=0.05,learning_rate=0.0001]"
    assert data.point_label("lora+dpo", {"dpo.beta": 0.3}) == "lora+dpo[dpo.beta=0.3]"
    assert data.point_label("dpo", {"dpo.center": True, "dpo.loss": "ipo"}) == \
        "dpo[center=True,loss=ipo]"
    assert data.point_label("lora", {"lora.target_modules": ["q", "v"]}) == \
        "lora[target_modules=q,v]"  # as the runner names the cell
    assert data.point_label("zero-shot", {}) == "zero-shot"
    assert data.sweep_name("rlhf", {"rlhf.beta": 1, "rlhf.learning_rate": 2}) == \
        "rlhf[beta,learning_rate]"
    assert data.parse_sweep("not json") == {} and data.parse_sweep("[1]") == {}


def test_runs_and_metrics_are_labelled_by_point(conn):
    labels = data.runs(conn)["label"].tolist()
    assert labels[:4] == ["zero-shot", "dpo[beta=10.0]", "dpo[beta=10.0]", "dpo[beta=0.5]"]
    assert "rlhf[beta=0.05,learning_rate=5e-05]" in labels
    assert "lora+dpo[dpo.beta=0.3]" in labels
    assert "dpo[beta=0.5] (n=64)" in labels  # the data-efficiency suffix is kept
    long = data.metrics(conn, names=["judge_reward"], filters={"model": ["m"]})
    assert set(long.loc[long["approach"] == "dpo", "label"]) == {
        "dpo[beta=0.5]", "dpo[beta=2.0]", "dpo[beta=10.0]"}
    assert data.metrics(conn, swept=False)["label"].unique().tolist() == ["zero-shot"]
    assert "zero-shot" not in set(data.metrics(conn, swept=True)["label"])


def test_leaderboard_tells_sweep_points_apart(conn):
    long = data.metrics(conn, names=["judge_reward"], filters={"model": ["m"]})
    table = analysis.leaderboard(long, ["judge_reward"], "judge_reward")
    dpo = table[table["candidate"].str.startswith("dpo[")]
    # one row per seed (the leaderboard also lists the failed seed-2 cell, with its status)
    assert dpo["candidate"].value_counts().to_dict() == {
        "dpo[beta=0.5]": 3, "dpo[beta=2.0]": 2, "dpo[beta=10.0]": 2}
    assert table["candidate"].iloc[0] == "dpo[beta=0.5]"  # ranked by its reward, 0.72


def test_sweep_runs_grouping_and_order(conn):
    runs = sweep_data.sweep_runs(conn)
    # finished cells only, no side run, no base run
    assert len(runs) == 6 + 4 + 1 + 1 and set(runs["approach"]) == {"dpo", "rlhf", "lora+dpo"}
    dpo = runs[(runs["sweep"] == "dpo[beta]") & (runs["model"] == "m")]
    # numeric order of the swept value (text order would put 10.0 before 2.0), then seed
    assert dpo["label"].tolist() == ["dpo[beta=0.5]"] * 2 + ["dpo[beta=2.0]"] * 2 + [
        "dpo[beta=10.0]"] * 2
    assert dpo["seed"].tolist() == [0, 1, 0, 1, 0, 1]
    assert [json.loads(p) for p in dpo["point"].iloc[::2]] == [{"beta": 0.5}, {"beta": 2.0},
                                                               {"beta": 10.0}]
    rlhf = runs[runs["approach"] == "rlhf"]
    assert rlhf["fields"].unique().tolist() == ["beta,learning_rate"]
    assert rlhf["label"].tolist() == [  # 5e-05 < 0.0001 numerically
        "rlhf[beta=0.05,learning_rate=5e-05]", "rlhf[beta=0.05,learning_rate=0.0001]",
        "rlhf[beta=0.2,learning_rate=5e-05]", "rlhf[beta=0.2,learning_rate=0.0001]"]
    composed = runs[runs["approach"] == "lora+dpo"]
    assert composed["sweep"].tolist() == ["lora+dpo[dpo.beta]"]
    assert composed["fields"].tolist() == ["dpo.beta"]

    catalog = sweep_data.sweep_catalog(conn).set_index(["model", "sweep"])
    assert catalog.index.tolist() == [("m", "dpo[beta]"), ("m", "lora+dpo[dpo.beta]"),
                                      ("m", "rlhf[beta,learning_rate]"), ("other", "dpo[beta]")]
    assert catalog.loc[("m", "dpo[beta]"), ["points", "seeds", "runs"]].tolist() == [3, 2, 6]
    assert catalog.loc[("other", "dpo[beta]"), "runs"] == 1  # another model: another sweep


def test_sweep_points_carry_metrics_with_cis(conn):
    points = sweep_data.sweep_points(conn, names=["judge_reward"], filters={"model": ["m"]})
    assert len(points) == 11 and set(points["name"]) == {"judge_reward"}
    first = points.iloc[0]
    assert (first["label"], first["seed"]) == ("dpo[beta=0.5]", 0)
    assert first["value"] == pytest.approx(0.68)
    assert (first["ci_low"], first["ci_high"]) == pytest.approx((0.58, 0.78))
    assert sweep_data.sweep_points(conn, filters={"task": ["none"]}).empty


def test_means_over_seeds_and_series(conn):
    points = sweep_data.sweep_points(conn, filters={"model": ["m"]})
    means = sweep_data.sweep_means(sweep_data.sweep_axis(points, "beta"))
    reward = means[means["name"] == "judge_reward"]
    dpo = reward[reward["series"] == "dpo"]
    assert dpo["swept"].tolist() == [0.5, 2.0, 10.0] and dpo["rank"].tolist() == [0, 1, 2]
    assert dpo["value"].tolist() == pytest.approx([0.7, 0.6, 0.5])  # the two seeds averaged
    assert dpo["ci_low"].tolist() == pytest.approx([0.6, 0.5, 0.4])
    assert dpo["seeds"].tolist() == [2, 2, 2]
    # two swept fields: one line per value of the other; lora+dpo swept dpo.beta, not beta
    assert set(reward["series"]) == {"dpo", "rlhf[learning_rate=5e-05]",
                                     "rlhf[learning_rate=0.0001]"}
    by_lr = sweep_data.sweep_means(sweep_data.sweep_axis(points, "learning_rate"))
    assert set(by_lr["series"]) == {"rlhf[beta=0.05]", "rlhf[beta=0.2]"}
    assert by_lr.loc[by_lr["series"] == "rlhf[beta=0.05]", "swept"].unique().tolist() == [
        5e-5, 1e-4]
    pairs = sweep_data.metric_pairs(means, "kl_to_base", "judge_reward",
                              ["series", "swept", "swept_text", "rank"])
    dpo_pairs = pairs[pairs["series"] == "dpo"]
    assert dpo_pairs["x"].tolist() == pytest.approx([1.5, 0.8, 0.2])
    assert dpo_pairs["y_high"].tolist() == pytest.approx([0.8, 0.7, 0.6])


def test_text_values_sort_after_numbers_and_plot_in_order():
    points = pd.DataFrame({
        "approach": "dpo", "point": ['{"loss": "sigmoid"}', '{"loss": "ipo"}'],
        "seed": 0, "name": "judge_reward", "value": [0.5, 0.6], "ci_low": None,
        "ci_high": None})
    means = sweep_data.sweep_means(sweep_data.sweep_axis(points, "loss"))
    assert means["swept"].isna().all() and means["swept_text"].tolist() == ["sigmoid", "ipo"]
    spec = charts.sweep_chart(means, "judge_reward", "loss").to_dict()
    assert spec["layer"][2]["encoding"]["x"]["field"] == "swept_text"
    assert spec["layer"][2]["encoding"]["x"]["type"] == "ordinal"


def test_sweep_charts(conn):
    points = sweep_data.sweep_points(conn, filters={"model": ["m"]})
    means = sweep_data.sweep_means(sweep_data.sweep_axis(points, "beta"))
    reward = means[means["name"] == "judge_reward"]
    spec = charts.sweep_chart(reward, "judge_reward", "beta", log=True).to_dict()
    assert spec["title"] == "judge_reward vs beta"
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "rule", "line"]
    x = spec["layer"][2]["encoding"]["x"]
    assert (x["field"], x["type"], x["scale"]["type"]) == ("swept", "quantitative", "log")
    assert spec["layer"][2]["encoding"]["color"]["field"] == "series"
    linear = charts.sweep_chart(reward, "judge_reward", "beta").to_dict()
    assert linear["layer"][2]["encoding"]["x"]["scale"].get("type") != "log"

    lines = sweep_data.metric_pairs(means, "kl_to_base", "judge_reward",
                              ["series", "swept", "swept_text", "rank"])
    base = data.metrics(conn, swept=False)
    singles = sweep_data.metric_pairs(sweep_data.seed_means(base, ["label"]), "kl_to_base",
                                "judge_reward", ["label"]).rename(columns={"label": "candidate"})
    assert singles["candidate"].tolist() == ["zero-shot"]
    spec = charts.sweep_frontier_chart(lines, singles, "kl_to_base", "judge_reward",
                                       x_higher=False, y_higher=True).to_dict()
    assert spec["title"] == "judge_reward vs kl_to_base along each sweep"
    marks = [layer["mark"] for layer in spec["layer"]]
    line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert line["encoding"]["order"]["field"] == "rank"  # joined in swept-value order
    texts = [layer["encoding"]["text"]["field"] for layer in spec["layer"]
             if layer["mark"]["type"] == "text"]
    assert texts == ["swept_text", "candidate"]
    assert any(m.get("shape") == "diamond" for m in marks)
    assert sum(m["type"] == "rule" for m in marks) == 4  # x and y whiskers, both layers
    assert line["encoding"]["x"]["title"] == "kl_to_base (lower is better)"
    alone = charts.sweep_frontier_chart(lines, singles.iloc[0:0], "kl_to_base",
                                        "judge_reward").to_dict()
    assert len(alone["layer"]) == 4


def test_databases_from_before_sweeps(tmp_path):
    store = Store(tmp_path / "v3.db")
    add_run(store, record("zero-shot", task="sentiment"), {"accuracy": 0.5})
    store.close()
    old = sqlite3.connect(tmp_path / "v3.db")
    old.execute("ALTER TABLE runs DROP COLUMN sweep_json")
    old.execute("ALTER TABLE runs DROP COLUMN cell_hash")
    old.commit()
    old.close()
    conn = data.connect(tmp_path / "v3.db")
    assert data.runs(conn)["label"].tolist() == ["zero-shot"]
    assert sweep_data.sweep_catalog(conn).empty and sweep_data.sweep_points(conn).empty
    assert data.metrics(conn, swept=False)["label"].tolist() == ["zero-shot"]
    assert data.metrics(conn, swept=True).empty
    assert data.busiest_task(conn) == "sentiment"


# The page, through the st.navigation entry file, as tests/test_reports_app.py does.

def open_sweeps(monkeypatch: pytest.MonkeyPatch, db: Path) -> AppTest:
    monkeypatch.setenv(ENV_VAR, str(db))
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    app.switch_page("app_pages/sweeps.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def specs(app: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in app.get("vega_lite_chart")]


def chart_rows(app: AppTest, k: int) -> pd.DataFrame:
    """The rows the ``k``-th chart was sent (its named datasets, Arrow-encoded), stacked."""
    chart = app.get("vega_lite_chart")[k]
    return pd.concat([dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data)
                      for d in chart.proto.datasets], ignore_index=True)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweeps-app") / "sample.db"
    write_sample(path)
    return path


def test_sweeps_page_on_the_sample(monkeypatch, sample_db):
    app = open_sweeps(monkeypatch, sample_db)
    assert app.selectbox(key="sweeps-task").value == "prefs"
    titles = [spec.get("title") for spec in specs(app)]
    assert titles == ["judge_reward vs beta", "judge_reward vs kl_to_base along each sweep"]
    table = app.dataframe[0].value
    assert table["sweep"].tolist() == ["dpo"] * 3 + ["rlhf"] * 2
    assert table["beta"].tolist() == ["0.01", "0.1", "0.5", "0.05", "0.2"]
    assert (table["seeds"] == 2).all()
    means = table.set_index("beta")["mean"]
    assert means["0.01"] > means["0.1"] > means["0.5"]  # higher beta, lower reward
    assert app.checkbox(key="sweeps-log-prefs-beta").value  # 0.01 to 0.5: log by default
    assert specs(app)[0]["layer"][2]["encoding"]["x"]["scale"]["type"] == "log"
    frontier = app.dataframe[1].value.set_index("candidate")
    assert frontier.at["zero-shot", "kl_to_base"] == 0.0  # the base point, not a sweep point
    assert len(frontier.loc["dpo"]) == 3
    plotted = chart_rows(app, 1)
    assert set(plotted["swept_text"].dropna()) == {"0.01", "0.1", "0.5", "0.05", "0.2"}
    assert plotted["candidate"].dropna().tolist() == ["zero-shot"]

    app.checkbox(key="sweeps-log-prefs-beta").uncheck().run()
    assert specs(app)[0]["layer"][2]["encoding"]["x"]["scale"].get("type") != "log"
    app.selectbox(key="sweeps-sweep-prefs-smollm2-135m-smoke").select("dpo[beta]").run()
    assert app.dataframe[0].value["sweep"].unique().tolist() == ["dpo"]
    app.selectbox(key="sweeps-metric-prefs").select("kl_to_base").run()
    assert specs(app)[0]["title"] == "kl_to_base vs beta"
    assert "Lower kl_to_base is better" in " ".join(c.value for c in app.caption)
    app.selectbox(key="sweeps-x-prefs").select("win_rate_vs_base").run()
    assert specs(app)[1]["title"] == "judge_reward vs win_rate_vs_base along each sweep"


def test_two_field_sweep_on_the_page(monkeypatch, matrix):
    app = open_sweeps(monkeypatch, matrix)
    key = "sweeps-sweep-prefs-m-smoke"
    app.selectbox(key=key).select("rlhf[beta,learning_rate]").run()
    assert set(app.dataframe[0].value["sweep"]) == {"rlhf[learning_rate=5e-05]",
                                                   "rlhf[learning_rate=0.0001]"}
    app.selectbox(key="sweeps-field-prefs-rlhf[beta,learning_rate]").select(
        "learning_rate").run()
    table = app.dataframe[0].value
    assert set(table["sweep"]) == {"rlhf[beta=0.05]", "rlhf[beta=0.2]"}
    assert table["learning_rate"].tolist()[:2] == ["5e-05", "0.0001"]


def test_sweeps_page_without_sweeps(monkeypatch, tmp_path):
    store = Store(tmp_path / "plain.db")
    add_run(store, record("zero-shot"), {"judge_reward": 0.4})
    store.close()
    app = open_sweeps(monkeypatch, tmp_path / "plain.db")
    message = app.info[0].value
    assert "No sweeps recorded" in message
    assert "pytest suites/ --task=prefs --approach=dpo --sweep dpo.beta=0.05,0.1,0.3" in message
    assert not app.get("vega_lite_chart")


def test_sweeps_of_different_options_share_the_frontier(monkeypatch, tmp_path):
    """A dpo.beta sweep and an rlhf.learning_rate sweep: the x-axis chart shows the one that
    swept the chosen option, the frontier both (each along its own swept option)."""
    path = tmp_path / "two.db"
    store = Store(path)
    add_run(store, record("zero-shot"), {"judge_reward": 0.6, "kl_to_base": 0.0})
    for beta, reward, kl in ((0.05, 0.75, 1.0), (0.8, 0.7, 0.5)):
        add_run(store, record("dpo", sweep={"dpo.beta": beta}),
                {"judge_reward": reward, "kl_to_base": kl})
    for lr, reward, kl in ((5e-5, 0.7, 0.1), (3e-4, 0.8, 1.0)):
        add_run(store, record("rlhf", sweep={"rlhf.learning_rate": lr}),
                {"judge_reward": reward, "kl_to_base": kl})
    store.close()
    app = open_sweeps(monkeypatch, path)
    assert app.dataframe[0].value["sweep"].unique().tolist() == ["dpo"]  # x axis: beta
    frontier = app.dataframe[1].value
    assert sorted(frontier["candidate"]) == ["dpo", "dpo", "rlhf", "rlhf", "zero-shot"]
    assert set(frontier["swept value"].dropna()) == {"0.05", "0.8", "5e-05", "0.0003"}
