"""A session that talks: the expected time, one line per phase when redirected, one training bar
with the loss (and no printed log dictionaries) on a terminal."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import sqlite3
import types
from pathlib import Path

import pytest
import torch

from harness.models.hardware import Precision
from harness.models.loading import load_model, resolve_model
from harness.runner.estimate import (
    PREPARE,
    REFERENCE_SETTING,
    CellPlan,
    Countdown,
    Setting,
    describe,
    estimate,
    past_timings,
    reference_timings,
)
from harness.runner.progress import ProgressReporter
from harness.runner.session import ExperimentSession, SessionOptions
from harness.runner.store import RunRecord, Store
from harness.runner.time_budget import TimeBudget
from harness.train.callbacks import TrainingProgress, show_training_progress
from harness.train.sft import TrainingConfig, train_sft
from tests.conftest import run_suites

STATUS = r"\[\d+:\d\d elapsed, (time left unknown|(<1|~\d+)\+? min left)\]"
SETTING = Setting("sentiment", "tiny", "quick", "cpu", "bf16")


def phase_lines(output: str, label: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"[{label}] ")]


def assert_in_order(lines: list[str], patterns: list[str]) -> None:
    """Each pattern matches a line after the previous pattern's line."""
    position = 0
    for pattern in patterns:
        found = next((k for k in range(position, len(lines)) if re.search(pattern, lines[k])),
                     None)
        assert found is not None, f"no line matching {pattern!r} after line {position}: {lines}"
        position = found + 1


@pytest.mark.slow
def test_a_redirected_session_prints_its_estimate_and_a_line_per_phase(tiny_model_dir, tmp_path):
    args = ["--approach=zero-shot,lora", "--budget=smoke", f"--model={tiny_model_dir}",
            "--results=r.db"]
    env = {"TUNEBENCH_CACHE": str(tmp_path / "cache"), "TUNEBENCH_HEARTBEAT_SECONDS": "0"}
    suites = ["test_accuracy.py", "test_overfitting.py"]
    first = run_suites(args, tmp_path, env=env, suites=suites)
    second = run_suites(args, tmp_path, env=env, suites=suites)  # past runs, lora cached
    for result in (first, second):
        assert result.returncode == 0, result.stdout + result.stderr
        for text in (result.stdout, result.stderr):
            assert "\r" not in text  # no progress bar in a file
            assert "{'loss'" not in text and "'grad_norm'" not in text
    assert re.search(r"^tunebench: 2 candidates x 2 suites; no estimate of the time: no "
                     r"finished run .* in r\.db", first.stdout, re.M)
    # lora's candidate is cached by the first run (unless a source file changed meanwhile:
    # the cache key covers the code); the estimate's claim must match what preparing did
    reloaded = "reloaded from cache" in second.stdout
    estimate_line = re.search(
        r"^tunebench: 2 candidates x 2 suites, expected (under a minute|about \d+ min) on "
        r"this machine \(from 2 past runs in r\.db(; 1 candidate cached)?\)$", second.stdout,
        re.M)
    assert estimate_line is not None, second.stdout
    assert bool(estimate_line.group(2)) == reloaded
    trained = [r"preparing: training 4 steps \(SFTTrainer\)",
               r"training: step \d of 4, loss \d",  # the heartbeat, here at every log
               r"trained 4 steps in \d+ s \(\d+ tokens/s\)"]
    for result, prepared in ((first, trained),
                             (second, [r"reloaded from cache in \d+ s"] if reloaded else trained)):
        lines = phase_lines(result.stdout, "lora")
        assert_in_order(lines, [r"preparing \(candidate 2 of 2\)", *prepared,
                                r"accuracy suite: 2 tests, 40 items in \d+ s",
                                r"overfitting suite: \d tests, .*in \d+ s",
                                r"done in \d+:\d\d: \d+ passed"])
        zero_shot = phase_lines(result.stdout, "zero-shot")
        assert_in_order(zero_shot, [r"preparing \(candidate 1 of 2\)", r"ready in \d+ s",
                                    r"accuracy suite: 2 tests, 40 items", "done in"])
        assert "training" not in " ".join(zero_shot)
        assert all(re.search(f"  {STATUS}$", line) for line in lines + zero_shot), lines
        assert result.stdout.index(zero_shot[-1]) < result.stdout.index(lines[0])
    assert all("~" in line or "<1 min" in line for line in phase_lines(second.stdout, "lora"))
    assert re.search(r"^tunebench: session took \d+:\d\d \(expected ", second.stdout, re.M)


def _record(approach: str, session: str = "s1", device: str = "cpu") -> RunRecord:
    return RunRecord(session=session, approach=approach, task="sentiment", model="tiny", seed=0,
                     budget="quick", config={}, config_hash="c", data_hash="d",
                     model_version="v", code_version="x", packages={}, device=device,
                     precision="bf16")


def _past_run(store: Store, db: Path, record: RunRecord, *, info: dict, start: float,
              suites: dict[str, float], finish: float) -> None:
    """A finished run whose candidate was ready at ``start + prepare_seconds`` and whose
    suites recorded their last metric at the given times."""
    run_id = store.start_run(record)
    store.update_info(run_id, info)
    store.add_metric(run_id, PREPARE, "train_seconds", 1.0)
    for suite in suites:
        store.add_metric(run_id, suite, "accuracy", 0.5, n=40)
    store.finish_run(run_id, "finished")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE id = ?",
                           (start, finish, run_id))
        connection.execute("UPDATE metrics SET recorded_at = ? WHERE run_id = ? AND suite = ?",
                           (start + info["prepare_seconds"], run_id, PREPARE))
        for suite, at in suites.items():
            connection.execute("UPDATE metrics SET recorded_at = ? WHERE run_id = ? AND "
                               "suite = ?", (at, run_id, suite))


def test_the_estimate_comes_from_past_runs_of_the_same_setting(tmp_path):
    db = tmp_path / "r.db"
    store = Store(db)
    # two lora runs: 5 s loading + 120/130 s training, then accuracy and latency
    _past_run(store, db, _record("lora"), start=1000.0, finish=1300.0,
              info={"prepare_seconds": 125.0, "train_seconds": 120.0},
              suites={"accuracy": 1155.0, "latency": 1215.0})
    _past_run(store, db, _record("lora"), start=2000.0, finish=2300.0,
              info={"prepare_seconds": 135.0, "train_seconds": 130.0},
              suites={"accuracy": 2175.0, "latency": 2235.0})
    # zero-shot in the first session: latency ran there (for lora) but skipped for it
    _past_run(store, db, _record("zero-shot"), start=3000.0, finish=3100.0,
              info={"prepare_seconds": 2.0}, suites={"accuracy": 3032.0})
    # another device: not this machine's setting
    _past_run(store, db, _record("lora", device="cuda"), start=4000.0, finish=4010.0,
              info={"prepare_seconds": 3.0, "train_seconds": 2.0}, suites={"accuracy": 4005.0})
    store.close()

    past = past_timings(db, SETTING, ["lora", "zero-shot"])
    assert (past["lora"].load, past["lora"].train, past["lora"].runs) == (5.0, 125.0, 2)
    assert past["lora"].suites == {"accuracy": 35.0, "latency": 60.0}
    assert past["zero-shot"].suites == {"accuracy": 30.0, "latency": 0.0}

    plans = [CellPlan("zero-shot", "zero-shot", ("accuracy", "latency")),
             CellPlan("lora", "lora", ("accuracy", "latency")),
             CellPlan("lora-seed1", "lora", ("accuracy",), cached=True)]
    result = estimate(plans, past, {})
    assert result.parts == {
        ("zero-shot", PREPARE): 2.0, ("zero-shot", "accuracy"): 30.0,
        ("zero-shot", "latency"): 0.0,
        ("lora", PREPARE): 130.0, ("lora", "accuracy"): 35.0, ("lora", "latency"): 60.0,
        ("lora-seed1", PREPARE): 5.0, ("lora-seed1", "accuracy"): 35.0,  # cached: no training
    }
    assert describe(result, cells=3, suites=2, results=db) == (
        f"tunebench: 3 candidates x 2 suites, expected about 5 min on this machine "
        f"(from 3 past runs in {db}; 1 candidate cached)")


def test_without_past_runs_the_reference_table_or_nothing_is_said():
    plans = [CellPlan("lora", "lora", ("accuracy", "latency", "retrieval")),
             CellPlan("my-method", "my-method", ("accuracy",))]
    result = estimate(plans, {}, reference_timings(REFERENCE_SETTING))
    assert result.parts[("lora", PREPARE)] == 101  # 1 s loading + 100 s training
    assert result.parts[("lora", "retrieval")] == 0  # skips on sentiment
    assert result.parts[("my-method", PREPARE)] is None
    line = describe(result, cells=2, suites=3, results=Path("r.db"))
    assert "expected at least 4 min" in line  # 101 + 45 + 83 s
    assert "lora from reference timings (benchmarks/README.md" in line
    assert "not counted, no timing yet: my-method" in line
    assert reference_timings(SETTING) == {}  # another model: the table says nothing
    nothing = estimate(plans, {}, reference_timings(SETTING))
    assert "no estimate of the time" in describe(nothing, cells=2, suites=3,
                                                 results=Path("r.db"))


def test_side_runs_of_curves_are_counted_and_do_not_inflate_the_overfitting_suite(tmp_path):
    """A --label-noise or --data-sizes side run costs loading, scaled training and the accuracy
    suite; the overfitting time of a session that had side runs is not taken as its own."""
    db = tmp_path / "r.db"
    store = Store(db)
    _past_run(store, db, _record("lora"), start=1000.0, finish=1300.0,
              info={"prepare_seconds": 105.0, "train_seconds": 100.0},
              suites={"accuracy": 1135.0, "overfitting": 1140.0})
    # a later session with a noisy side run: its overfitting suite took 150 s
    _past_run(store, db, _record("lora", session="s2"), start=2000.0, finish=2300.0,
              info={"prepare_seconds": 105.0, "train_seconds": 100.0},
              suites={"accuracy": 2135.0, "overfitting": 2285.0})
    side = store.start_run(dataclasses.replace(_record("lora", session="s2"),
                                               config={"label_noise": 0.2}))
    store.update_info(side, {"prepare_seconds": 105.0, "train_seconds": 100.0})
    store.finish_run(side, "finished")
    store.close()
    past = past_timings(db, SETTING, ["lora"])
    assert past["lora"].suites["overfitting"] == 5.0  # from the session without side runs
    plans = [CellPlan("lora", "lora", ("accuracy", "overfitting"), side_runs=(1.0, 0.5))]
    result = estimate(plans, past, {})
    # 5 s + (5 s load + 100 s x 1.0 + 30 s accuracy) + (5 + 100 x 0.5 + 30)
    assert result.parts[("lora", "overfitting")] == 5.0 + 135.0 + 85.0


def test_time_left_follows_the_pace_of_the_finished_parts():
    countdown = Countdown({("a", PREPARE): 100.0, ("a", "accuracy"): 50.0,
                           ("b", PREPARE): 100.0})
    assert countdown.remaining() == (250.0, False)
    countdown.spend(("a", PREPARE), 200.0, done=True)  # this machine is twice as slow
    assert countdown.pace() == 2.0
    assert countdown.remaining() == (300.0, False)
    assert countdown.remaining(running=(("a", "accuracy"), 30.0)) == (270.0, False)
    countdown.expected[("c", PREPARE)] = None
    assert countdown.remaining()[1] is True


def test_the_training_bar_shows_the_loss_and_no_log_dictionary_is_printed(
        tiny_model_dir, tmp_path, capsys, caplog):
    model, tokenizer = load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"),
                                  torch.float32)
    data = ExperimentSession(SessionOptions(approaches=["lora"], budget="smoke")).task_data()
    bar = io.StringIO()
    curves: list[tuple] = []
    caplog.set_level(logging.INFO, logger="harness.train.progress")
    train_sft(model, tokenizer, data.train[:8], data.validation[:4],
              TrainingConfig(max_steps=3, batch_size=4, eval_every=1), seed=0,
              output_dir=tmp_path, precision=Precision("fp32", torch.device("cpu")),
              curve_sink=lambda *point: curves.append(point),
              inspect_trainer=lambda trainer: show_training_progress(
                  trainer, TrainingProgress("SFTTrainer", file=bar, disable=False)))
    printed = capsys.readouterr()
    assert "{'loss'" not in printed.out + printed.err
    assert "'grad_norm'" not in printed.out + printed.err
    final = bar.getvalue().split("\r")[-2]  # the bar's last state before it closed
    assert re.search(r"training: 100%.*3/3.*loss=\d", final), final
    assert "val_loss=" in final
    assert {(split, name) for _, split, name, _ in curves} == {("train", "loss"),
                                                               ("validation", "loss")}
    events = [r.training for r in caplog.records if hasattr(r, "training")]
    assert events[0] == {"event": "begin", "step": 0, "steps": 3, "trainer": "SFTTrainer"}
    assert events[-1]["event"] == "end"


@pytest.mark.slow
def test_a_candidate_that_fails_to_prepare_is_reported_as_such(tiny_model_dir, tmp_path):
    result = run_suites(["-p", "runner_plugins", "--approach=broken", "--budget=smoke",
                         f"--model={tiny_model_dir}", "--results=r.db"], tmp_path,
                        suites=["test_accuracy.py"])
    assert result.returncode == 1
    assert_in_order(phase_lines(result.stdout, "broken"), [
        r"preparing \(candidate 1 of 1\)",
        r"preparing failed after \d+ s: RuntimeError: deliberate failure in prepare",
        r"accuracy suite: 2 tests, 2 ERROR in \d+ s", r"done in \d+:\d\d: 2 error"])


def test_a_budgeted_session_counts_down_to_the_end_of_its_budget():
    """With --time-budget the time left is the budget's when it ends the session first."""
    config = types.SimpleNamespace(getoption=lambda name, default=None: default)
    progress = ProgressReporter(config, types.SimpleNamespace(time_budget=TimeBudget(120.0)),
                                lines=False)
    progress.countdown = Countdown({("a", PREPARE): 1800.0})
    assert progress.status().endswith(" elapsed, ~2 min left]")
    progress.experiment = types.SimpleNamespace(time_budget=TimeBudget(3600.0))
    assert progress.status().endswith(" elapsed, ~30 min left]")  # the work ends first
    progress.experiment = types.SimpleNamespace(time_budget=None)
    assert progress.status().endswith(" elapsed, ~30 min left]")
