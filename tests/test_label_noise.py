"""Label noise (``--label-noise``): the corruption rules of ``harness.data.noise``, the session's
noisy data and run records, the suite end to end on the tiny model, and the dashboard's curve."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from harness.data.noise import CORRUPTED_FROM, corrupt_answers, corrupted_ids
from harness.measure.metrics import accuracy
from harness.runner.pytest_plugin import _shares
from harness.runner.session import ExperimentSession, SessionOptions
from harness.runner.store import RunRecord, Store
from harness.tasks.base import Example, TaskData, normalize_text
from reports.data import ENV_VAR
from reports.sample import write_sample
from tests.conftest import query_db, run_suites

LABELS = ("negative", "neutral", "positive")


def _item(i: int, split: str, **fields) -> Example:
    return Example(id=f"{split}-{i}", messages=({"role": "user", "content": f"text {i}"},),
                   **fields)


def classification(n: int = 50) -> TaskData:
    def items(split: str, count: int) -> list[Example]:
        return [_item(i, split, answer=LABELS[i % 3], choices=LABELS) for i in range(count)]

    return TaskData("toy", items("train", n), items("validation", 10), items("eval", 10),
                    labels=LABELS)


def changed(clean: TaskData, noisy: TaskData) -> dict[str, Example]:
    return {a.id: b for a, b in zip(clean.train, noisy.train, strict=True) if a != b}


def test_corruption_is_seeded_exact_and_only_in_train():
    clean = classification()
    noisy = corrupt_answers(clean, 0.3, seed=1)
    assert noisy.train == corrupt_answers(clean, 0.3, seed=1).train  # same seed, same noise
    assert set(changed(clean, noisy)) != set(changed(clean, corrupt_answers(clean, 0.3, 2)))
    assert len(changed(clean, noisy)) == round(0.3 * 50) == len(corrupted_ids(noisy))
    assert noisy.validation == clean.validation and noisy.eval == clean.eval
    assert [e.id for e in noisy.train] == [e.id for e in clean.train]  # ids and order kept
    for original, item in zip(clean.train, noisy.train, strict=True):
        if original != item:
            assert item.answer != original.answer and item.answer in original.choices
            assert item.meta[CORRUPTED_FROM] == original.answer
        else:
            assert CORRUPTED_FROM not in item.meta
    assert noisy.fingerprint() != clean.fingerprint()
    assert clean.train == classification().train  # the input is not modified


def test_noisier_sets_contain_the_cleaner_ones_corruption():
    clean = classification(40)
    low, high = (changed(clean, corrupt_answers(clean, share, seed=0)) for share in (0.1, 0.25))
    assert len(low) == 4 and len(high) == 10
    assert all(high[item_id].answer == item.answer for item_id, item in low.items())


def test_every_wrong_label_gets_drawn():
    clean = classification(300)
    wrong = [(clean.train[int(i.split("-")[1])].answer, e.answer)
             for i, e in changed(clean, corrupt_answers(clean, 0.9, seed=0)).items()]
    assert {pair for pair in wrong} == {(a, b) for a in LABELS for b in LABELS if a != b}


def test_generation_answers_come_from_other_items():
    answers = ["Paris", "paris.", "Rome", "Oslo", "Bern", "Lima"]
    train = [_item(i, "train", answer=a) for i, a in enumerate(answers)]
    clean = TaskData("qa", train, [], [_item(0, "eval", answer="Paris")])
    noisy = corrupt_answers(clean, 0.5, seed=3)
    for item in changed(clean, noisy).values():
        original = item.meta[CORRUPTED_FROM]
        assert normalize_text(item.answer) != normalize_text(original)
        assert item.answer in answers
    assert len(changed(clean, noisy)) == 3
    same = TaskData("qa", [_item(i, "train", answer="Yes!") for i in range(3)]
                    + [_item(9, "train", answer="yes")], [], [])
    with pytest.raises(ValueError, match="answers are all the same"):
        corrupt_answers(same, 0.5, seed=0)


def test_preferences_are_flipped():
    train = [_item(i, "train", answer=f"good {i}", rejected=f"bad {i}") for i in range(10)]
    noisy = corrupt_answers(TaskData("prefs", train, [], []), 0.4, seed=0)
    flipped = [e for e in noisy.train if CORRUPTED_FROM in e.meta]
    assert len(flipped) == 4
    for item in flipped:
        number = item.id.split("-")[1]
        assert (item.answer, item.rejected) == (f"bad {number}", f"good {number}")
        assert item.meta[CORRUPTED_FROM] == f"good {number}"


def test_share_zero_is_clean_and_bad_shares_are_refused():
    clean = classification()
    assert corrupt_answers(clean, 0.0, seed=0) is clean
    for share in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"not in \[0, 1\)"):
            corrupt_answers(clean, share, seed=0)
    assert _shares("0.1, 0.4", "--label-noise") == [0.1, 0.4]
    for text, message in (("0.1,1", r"1 is not a share in \[0, 1\)"),
                          ("ten", "give comma-separated shares")):
        with pytest.raises(pytest.UsageError, match=message):
            _shares(text, "--label-noise")


def make_session(tmp_path: Path, model: Path, **options) -> ExperimentSession:
    return ExperimentSession(SessionOptions(
        approaches=["full-ft"], model=str(model), budget="smoke",
        results=tmp_path / "r.db", **options))


def test_session_noisy_data_records_and_cache_keys(tiny_model_dir, tmp_path):
    session = make_session(tmp_path, tiny_model_dir)
    clean, noisy = session.task_data(0), session.task_data(0, label_noise=0.25)
    assert noisy is session.task_data(0, label_noise=0.25)  # prepared once per session
    assert noisy.fingerprint() != clean.fingerprint()
    assert len(corrupted_ids(noisy)) == round(0.25 * len(clean.train))
    assert noisy.eval == clean.eval and noisy.validation == clean.validation

    plain, record = session.run_record("full-ft", 0), session.run_record("full-ft", 0,
                                                                        label_noise=0.25)
    assert record.config["label_noise"] == 0.25 and "label_noise" not in plain.config
    assert record.data_hash == noisy.fingerprint() != plain.data_hash
    assert record.config_hash != plain.config_hash

    # a trained approach's cached candidate is keyed by the data it trained on
    approach = session.make_approach("full-ft")
    folders = {approach.cache_folder(session.run_context(data, 0, tmp_path))
               for data in (clean, noisy)}
    assert len(folders) == 2

    cell = session.cells[0]
    noisy_session = make_session(tmp_path, tiny_model_dir, label_noise=[0.25])
    assert noisy_session.cell_hash(cell, ["t"]) != session.cell_hash(cell, ["t"])


@pytest.mark.slow
def test_noise_curve_end_to_end(tiny_model_dir, tmp_path):
    result = run_suites([
        "--approach=full-ft,zero-shot", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "--label-noise=0.5", "-k", "noise", "-rs",
    ], tmp_path, env={"TUNEBENCH_CACHE": str(tmp_path / "cache")}, timeout=600,
        suites=["test_overfitting.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert "@ 50% noisy labels" in result.stdout  # the progress line names the inner run
    assert "full-ft (noise=0.5)" in result.stdout  # the session summary names the side run
    db = tmp_path / "r.db"
    runs = {(r["approach"], json.loads(r["config_json"]).get("label_noise")): r
            for r in query_db(db, "SELECT * FROM runs")}
    assert set(runs) == {("full-ft", None), ("full-ft", 0.5),
                         ("zero-shot", None), ("zero-shot", 0.5)}
    for approach in ("full-ft", "zero-shot"):
        clean, noisy = runs[(approach, None)], runs[(approach, 0.5)]
        assert noisy["status"] == "finished"
        assert noisy["data_hash"] != clean["data_hash"]
        metrics = {m["name"]: m for m in query_db(
            db, "SELECT * FROM metrics WHERE run_id = ? AND suite = 'overfitting'", clean["id"])}
        assert {"noise_robustness[0]", "noise_robustness[0.5]", "noise_drop[0.5]"} <= set(metrics)
        for row in (m for n, m in metrics.items() if n.startswith(("noise_rob", "noise_drop"))):
            assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["n"] == 40
        base, hurt = metrics["noise_robustness[0]"], metrics["noise_robustness[0.5]"]
        drop = metrics["noise_drop[0.5]"]
        assert drop["value"] == pytest.approx(hurt["value"] - base["value"])
        extra = json.loads(hurt["extra_json"])
        assert extra["run_id"] == noisy["id"] and extra["corrupted"] == 16  # half of 32
        side = query_db(db, "SELECT value FROM metrics WHERE run_id = ? AND name = "
                        "'primary_accuracy'", noisy["id"])
        assert [r["value"] for r in side] == [hurt["value"]]
    zero = {m["name"]: m["value"] for m in query_db(
        db, "SELECT name, value FROM metrics WHERE run_id = ?", runs[("zero-shot", None)]["id"])}
    assert zero["noise_robustness[0.5]"] == zero["noise_robustness[0]"]  # reads no training
    assert zero["noise_drop[0.5]"] == 0.0
    for approach in ("full-ft", "zero-shot"):  # the detector, scored against the noise
        metrics = {m["name"]: m for m in query_db(
            db, "SELECT * FROM metrics WHERE run_id = ?", runs[(approach, None)]["id"])}
        recall = metrics["noise_detection_recall[0.5]"]
        assert recall["n"] == 16 and 0 <= recall["value"] <= 1  # over the corrupted items
        flagged = json.loads(recall["extra_json"])["flagged"]
        if flagged:
            assert metrics["noise_detection_precision[0.5]"]["n"] == flagged
        table = query_db(db, "SELECT item_id, correct FROM examples WHERE run_id = ? AND "
                         "suite = 'data_quality.suspect_labels'", runs[(approach, 0.5)]["id"])
        assert len(table) == min(flagged, 50)
        assert sum(r["correct"] for r in table) == round(
            metrics.get("noise_detection_precision[0.5]", {"value": 0})["value"] * flagged)
    noisy_info = json.loads(runs[("full-ft", 0.5)]["info_json"])
    assert not noisy_info.get("cache_hit")  # trained again, not the clean cached candidate


def noise_db(tmp_path: Path) -> Path:
    """The sample database plus a label-noise curve of two approaches."""
    path = tmp_path / "noise.db"
    ids = write_sample(path)
    store = Store(path)
    for approach, points in (("lora", ((0.0, 0.8), (0.2, 0.7), (0.4, 0.55))),
                             ("few-shot", ((0.0, 0.6), (0.2, 0.58), (0.4, 0.5)))):
        for share, value in points:
            hits = [i < value * 40 for i in range(40)]
            estimate = accuracy(hits)
            store.add_metric(ids[approach], "overfitting", f"noise_robustness[{share:g}]",
                             estimate.value, low=estimate.low, high=estimate.high, n=40,
                             higher_is_better=True, extra={"label_noise": share,
                                                           "corrupted": round(share * 32)})
    side = store.start_run(RunRecord(
        session="20260101-000000-demo", approach="lora", task="sentiment",
        model="smollm2-135m", seed=0, budget="smoke", config={"label_noise": 0.2},
        config_hash="noisy", data_hash="data-sentiment-noisy", model_version="smollm2-135m@1",
        code_version="git:abc1234", packages={}, device="cpu", kind="parameter-efficient"))
    store.add_metric(side, "accuracy", "accuracy", 0.7, higher_is_better=True)
    store.finish_run(side, "finished")
    store.close()
    return path


def test_dashboard_draws_the_noise_curve_and_hides_noisy_runs(monkeypatch, tmp_path):
    from reports import data

    db = noise_db(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(db))
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "reports" / "app.py"),
                            default_timeout=60).run()
    app.switch_page("app_pages/curves.py").run()
    assert not app.exception, [e.value for e in app.exception]
    titles = [json.loads(c.proto.spec).get("title") for c in app.get("vega_lite_chart")]
    assert "label-noise robustness" in titles
    table = app.dataframe[-1].value
    assert table["label_noise"].tolist() == [0.0, 0.2, 0.4] * 2
    assert set(table["candidate"]) == {"lora", "few-shot"}
    assert table["corrupted"].tolist()[:3] == [0, 6, 13]

    conn = data.connect(db)
    try:
        every = data.runs(conn)
    finally:
        conn.close()
    labels, main = set(every["label"]), set(data.main_runs(every)["label"])
    assert "lora (noise=0.2)" in labels and "lora (noise=0.2)" not in main


def test_mlflow_names_a_noisy_run_apart_from_its_clean_run():
    from plugins.mlflow_records import run_name

    record = RunRecord(
        session="s", approach="lora", task="sentiment", model="m", seed=0, budget="smoke",
        config={"r": 8}, config_hash="c", data_hash="d", model_version="v",
        code_version="git:x", packages={}, device="cpu")
    assert run_name(record) == "lora-seed0"
    noisy = dataclasses.replace(record, config={"r": 8, "label_noise": 0.2})
    assert run_name(noisy) == "lora-noise0.2-seed0"
