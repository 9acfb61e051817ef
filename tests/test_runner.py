"""The experiment runner end to end, in subprocesses, on the tiny model."""

import json
import signal

import pytest
import torch

from harness.models.hardware import resolve_precision
from tests.conftest import query_db as rows
from tests.conftest import run_suites, start_suites, wait_while_running

pytestmark = pytest.mark.slow  # the experiment runner in subprocesses


def test_unknown_approach_fails_at_once_listing_the_registered_ones(tmp_path):
    result = run_suites(["--approach=nonsense"], tmp_path)
    assert result.returncode == 4  # pytest's usage error
    assert "unknown approach 'nonsense'" in result.stderr
    assert "zero-shot" in result.stderr and "few-shot" in result.stderr
    assert "collected" not in result.stdout  # stopped before collecting, let alone loading
    assert not (tmp_path / "results").exists()  # nothing was recorded


def test_misspelt_approach_gets_a_suggestion(tmp_path):
    result = run_suites(["--approach=few-shoot"], tmp_path)
    assert result.returncode == 4
    assert "Did you mean 'few-shot'" in result.stderr


def test_bad_override_is_a_usage_error(tmp_path):
    result = run_suites(["--approach=few-shot", "--set", "few-shot.k=many"], tmp_path)
    assert result.returncode == 4
    assert "expected int, got 'many'" in result.stderr


def test_out_of_range_option_is_a_usage_error_before_anything_is_recorded(tmp_path):
    result = run_suites(["--approach=lora", "--set", "lora.r=-1"], tmp_path)
    assert result.returncode == 4  # pytest's usage error, not a failed run
    assert "--set 'lora.r=-1': must be a positive integer" in result.stderr
    assert "collected" not in result.stdout
    assert not (tmp_path / "results").exists()  # no run row, no database


@pytest.fixture
def smoke_run(smoke_comparison):
    folder, result = smoke_comparison
    return folder / "r.db", result


def test_smoke_run_records_runs_metrics_and_examples(smoke_run):
    db, result = smoke_run
    assert result.returncode == 0, result.stdout + result.stderr
    runs = rows(db, "SELECT * FROM runs ORDER BY id")
    assert [r["approach"] for r in runs] == ["zero-shot", "few-shot", "lora"]
    for run in runs:
        assert run["status"] == "finished"
        assert run["task"] == "sentiment" and run["budget"] == "smoke"
        assert len(run["data_hash"]) == 64 and run["code_version"]
        assert "torch" in json.loads(run["packages_json"])
        metrics = {m["name"]: m for m in rows(db, "SELECT * FROM metrics WHERE run_id=?",
                                               run["id"])}
        assert {"accuracy", "macro_f1", "gen_accuracy"} <= set(metrics)
        accuracy = metrics["accuracy"]
        assert accuracy["n"] == 40
        assert accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
        examples = rows(db, "SELECT suite, count(*) AS n FROM examples WHERE run_id=? "
                            "GROUP BY suite", run["id"])
        prompted = {"forgetting.general.prompted": 24} if run["approach"] == "few-shot" else {}
        flagged = int(metrics["suspect_labels"]["value"])  # the data check's suspect labels
        suspects = {"data_quality.suspect_labels": min(flagged, 50)} if flagged else {}
        assert {e["suite"]: e["n"] for e in examples} == {
            "accuracy.choice": 40, "accuracy.generation": 40, "forgetting.general": 24,
            "forgetting.general.raw": 24, "latency": 3, **prompted, **suspects}
    assert json.loads(runs[1]["config_json"]) == {"k": 2, "balanced": True, "draws": 8}
    auto = resolve_precision("auto", torch.device("cpu")).name
    assert {run["precision"] for run in runs} == {auto}  # --precision auto, recorded
    assert len(json.loads(runs[1]["info_json"])["demonstration_ids"]) == 2


def test_test_ids_carry_approach_names_and_summary_is_printed(smoke_run):
    _, result = smoke_run
    assert "test_choice_accuracy[zero-shot] PASSED" in result.stdout
    assert "test_choice_accuracy[few-shot] PASSED" in result.stdout
    summary = result.stdout.split("tunebench results")[1]
    assert "zero-shot" in summary and "few-shot" in summary and "accuracy" in summary
    assert "lora" in summary
    assert "results database:" in summary and "r.db" in summary
    assert "device=cpu precision=" in summary


def test_k_selects_approaches(tiny_model_dir, tmp_path):
    result = run_suites(["--approach=all", "--budget=smoke", f"--model={tiny_model_dir}",
                         "--results=r.db", "-k", "few-shot", "-q"], tmp_path,
                        suites=["test_accuracy.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["approach"] for r in rows(tmp_path / "r.db", "SELECT approach FROM runs")] == [
        "few-shot"]


def test_failing_approach_is_recorded_as_failed_and_the_others_survive(tiny_model_dir, tmp_path):
    result = run_suites(["-p", "runner_plugins", "--approach=zero-shot,broken", "--budget=smoke",
                         f"--model={tiny_model_dir}", "--results=r.db", "-q"], tmp_path,
                        suites=["test_accuracy.py"])
    assert result.returncode == 1
    status = {r["approach"]: r for r in rows(tmp_path / "r.db", "SELECT * FROM runs")}
    assert status["zero-shot"]["status"] == "finished"
    assert status["broken"]["status"] == "failed"
    assert "deliberate failure in prepare" in status["broken"]["error"]
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM metrics WHERE run_id=?",
                status["zero-shot"]["id"])[0][0] >= 3


def test_ctrl_c_marks_the_run_interrupted_and_keeps_what_finished(tiny_model_dir, tmp_path):
    marker = tmp_path / "marker"
    process = start_suites(
        ["-p", "runner_plugins", "--approach=zero-shot,sleepy", "--budget=smoke",
         f"--model={tiny_model_dir}", "--results=r.db", "-q"], tmp_path,
        env={"TUNEBENCH_TEST_MARKER": str(marker)}, suites=["test_accuracy.py"])
    wait_while_running(process, marker.exists, "the sleepy approach never started")
    process.send_signal(signal.SIGINT)
    output = "".join(process.communicate(timeout=120))
    assert process.returncode == 2, output  # pytest's "interrupted"
    status = {r["approach"]: r for r in rows(tmp_path / "r.db", "SELECT * FROM runs")}
    assert status["sleepy"]["status"] == "interrupted"
    assert status["zero-shot"]["status"] == "finished"
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM examples WHERE run_id=? AND suite "
                "LIKE 'accuracy.%'", status["zero-shot"]["id"])[0][0] == 80
    assert rows(tmp_path / "r.db", "PRAGMA integrity_check")[0][0] == "ok"


def test_bad_data_file_fails_at_once_naming_file_line_and_field(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text('{"instruction": "Say hi", "output": "hi"}\n{"instruction": "Say yo"}\n')
    result = run_suites([f"--task={data}", "--approach=zero-shot"], tmp_path)
    assert result.returncode == 4
    assert f"{data}:2: field 'output' is missing" in result.stderr


def test_help_lists_registered_approaches_and_tasks(tmp_path):
    result = run_suites(["--help"], tmp_path, env={"COLUMNS": "2000"})  # argparse wraps
    assert result.returncode == 0  # at hyphens ("control-\nquote") on a narrow terminal
    options = result.stdout.split("tunebench experiment options")[1]
    from harness.core.plugins import approaches

    assert f"Registered: {', '.join(approaches().names())}." in " ".join(options.split())
    assert "sentiment" in options
