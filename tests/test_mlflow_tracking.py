"""``--mlflow``: runs mirrored into MLflow tracking, read back through ``MlflowClient``.

A real smoke session writes MLflow's local SQLite store; every check compares what MLflow holds
with what the tunebench results file holds for the same run.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from harness.runner.store import RunRecord, Store
from plugins.mlflow_records import MAX_PARAM_VALUE, key, value_text
from plugins.mlflow_tracking import MlflowTracker, MlflowTrackingWarning, log_results_file
from tests.conftest import HELPERS, query_db, run_suites

# MLflow's SQLite store on SQLAlchemy 2.1 warns as the tests read it back.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")

IDENTITY = ("approach", "task", "model", "model_version", "seed", "budget", "precision",
            "device", "data_hash", "config_hash", "code_version")


@pytest.fixture
def mirrored(smoke_comparison) -> Path:
    """The shared smoke session (zero-shot, few-shot and lora), run with ``--mlflow`` into the
    default local store."""
    folder, result = smoke_comparison
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"3 runs logged to sqlite:///{folder.resolve()}/mlflow.db" in result.stdout
    assert "INFO mlflow" not in result.stdout + result.stderr  # MLflow's INFO lines quiet
    return folder


def mlflow_runs(uri: str, experiment: str = "tunebench/sentiment") -> dict[int, Any]:
    """MLflow's runs of ``experiment`` by tunebench run id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment} in {uri}"
    runs = client.search_runs([found.experiment_id])
    return {int(run.data.tags["tunebench.run_id"]): run for run in runs}


def history(client: Any, run_id: str, name: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))


def table_rows(client: Any, run_id: str, path: str, folder: Path) -> int:
    local = client.download_artifacts(run_id, path, str(folder))
    return len(json.loads(Path(local).read_text())["data"])


@pytest.mark.slow
def test_every_run_is_mirrored_with_params_metrics_curves_examples_and_status(
        mirrored: Path, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{mirrored}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    runs = mlflow_runs(uri)
    db = mirrored / "r.db"
    stored = query_db(db, "SELECT * FROM runs ORDER BY id")
    assert sorted(runs) == [row["id"] for row in stored]
    for row in stored:
        run = runs[row["id"]]
        approach = row["approach"]
        assert run.info.run_name == f"{approach}-seed0"
        assert run.info.status == "FINISHED" and run.data.tags["tunebench.status"] == "finished"
        assert run.data.tags["tunebench.session"] == row["session"]
        assert run.data.tags["tunebench.kind"] == row["kind"]
        assert run.data.tags["tunebench.results"] == str(db.resolve())
        params = run.data.params
        assert {name: params[name] for name in IDENTITY} == {
            name: str(row[name]) for name in IDENTITY}
        config = json.loads(row["config_json"])
        assert all(params[f"{approach}.{name}"] == value_text(value)
                   for name, value in config.items())
        assert bool(config) == (approach != "zero-shot")  # zero-shot has no options
        metrics = query_db(db, "SELECT * FROM metrics WHERE run_id = ?", row["id"])
        assert len(metrics) > 20
        for metric in metrics:
            name = key(metric["name"])
            assert run.data.metrics[name] == pytest.approx(metric["value"]), name
            for suffix, column in (("_ci_low", "ci_low"), ("_ci_high", "ci_high"), ("_n", "n")):
                if metric[column] is None:
                    assert name + suffix not in run.data.metrics
                else:
                    assert run.data.metrics[name + suffix] == pytest.approx(metric[column])
        for suite, count in query_db(db, "SELECT suite, count(*) FROM examples WHERE run_id = ? "
                                         "GROUP BY suite", row["id"]):
            assert table_rows(client, run.info.run_id, f"examples/{suite}.json",
                              tmp_path) == count, suite
        curves = query_db(db, "SELECT step, split, value FROM curves WHERE run_id = ?",
                          row["id"])
        for split in ("train", "validation"):
            expected = sorted((c["step"], pytest.approx(c["value"])) for c in curves
                              if c["split"] == split)
            assert history(client, run.info.run_id, f"{split}_loss") == expected
            assert (len(expected) > 1) == (approach == "lora")
    lora = runs[next(row["id"] for row in stored if row["approach"] == "lora")]
    info = json.loads(next(row["info_json"] for row in stored if row["approach"] == "lora"))
    assert lora.data.metrics["train_tokens"] == info["train_tokens"] > 0
    assert lora.data.tags["info.artifact_dir"] == info["artifact_dir"]


@pytest.mark.slow
def test_a_stored_run_mirrors_like_a_live_one(
        mirrored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The path of --executor=ray (the driver logs imported runs from its store) and of
    exporting an existing results file (``reports.export --format mlflow``): the same params,
    metrics, curves and tables; an export adds no run twice."""
    from mlflow import MlflowClient

    from reports.export import main as export_main

    uri = f"sqlite:///{tmp_path}/export.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert export_main(["--db", str(mirrored / "r.db"), "--format", "mlflow"]) == 0
    assert f"mlflow: 3 run(s) logged to {uri}" in capsys.readouterr().out
    assert log_results_file(mirrored / "r.db", uri=uri) == []  # already there
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert log_results_file(mirrored / "r.db") == []  # mirrored live by --mlflow
    live, exported = mlflow_runs(f"sqlite:///{mirrored}/mlflow.db"), mlflow_runs(uri)
    client, live_client = MlflowClient(tracking_uri=uri), MlflowClient(
        tracking_uri=f"sqlite:///{mirrored}/mlflow.db")
    assert sorted(live) == sorted(exported)
    for run_id, run in live.items():
        twin = exported[run_id]
        assert twin.info.run_name == run.info.run_name and twin.info.status == "FINISHED"
        assert twin.data.params == run.data.params
        assert twin.data.metrics == pytest.approx(run.data.metrics)
        assert {k: v for k, v in twin.data.tags.items() if k.startswith(("tunebench.", "info"))
                } == {k: v for k, v in run.data.tags.items()
                      if k.startswith(("tunebench.", "info"))}
        for name in ("train_loss", "validation_loss"):
            assert history(client, twin.info.run_id, name) == history(
                live_client, run.info.run_id, name)
        files = {f.path for f in client.list_artifacts(twin.info.run_id, "examples")}
        assert files == {f.path for f in live_client.list_artifacts(run.info.run_id,
                                                                     "examples")} != set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_an_unreachable_tracking_server_warns_once_and_keeps_every_result(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_suites(
        ["--approach=zero-shot", "--budget=smoke", f"--model={tiny_model_dir}",
         "--results=r.db", "--mlflow"], tmp_path, suites=["test_accuracy.py"],
        env={"MLFLOW_TRACKING_URI": uri, "TUNEBENCH_CACHE": str(tmp_path / "cache")},
        timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("MlflowTrackingWarning: MLflow mirroring to " + uri) == 1
    assert "mlflow: mirroring stopped (starting run 1: " in result.stdout
    assert f"every result is in {tmp_path / 'r.db'}" in result.stdout
    runs = query_db(tmp_path / "r.db", "SELECT id, status FROM runs")
    assert [tuple(row) for row in runs] == [(1, "finished")]
    assert query_db(tmp_path / "r.db", "SELECT value FROM metrics WHERE name = 'accuracy'")


@pytest.mark.slow  # the runner in a subprocess
def test_missing_mlflow_is_a_usage_error_naming_the_extra(tmp_path: Path) -> None:
    """An ``mlflow`` package that fails to import stands in for an environment without it."""
    blocker = tmp_path / "without-mlflow" / "mlflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named "
                                         "'mlflow'\", name='mlflow')\n")
    result = run_suites(["--mlflow", "--results=r.db"], tmp_path, timeout=120,
                        env={"PYTHONPATH": f"{blocker.parent}:{HELPERS}"})
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert ("--mlflow: MLflow tracking needs mlflow-skinny, not installed here: "
            "pip install 'tunebench[mlflow]'") in result.stderr
    assert not (tmp_path / "r.db").exists()


def record(approach: str = "few-shot", **config: Any) -> RunRecord:
    return RunRecord(session="s", approach=approach, task="sentiment", model="tiny", seed=3,
                     budget="smoke", config=config, config_hash="c", data_hash="d",
                     model_version="m", code_version="git:abc", packages={"torch": "2"},
                     device="cpu", kind="prompting")


@pytest.mark.slow  # an MLflow SQLite store each: its schema migrations take seconds
@pytest.mark.parametrize("status, expected", [("failed", "FAILED"),
                                              ("interrupted", "KILLED"),
                                              ("finished", "FINISHED")])
def test_hooks_end_the_mlflow_run_with_the_tunebench_status(
        tmp_path: Path, status: str, expected: str) -> None:
    from mlflow import MlflowClient

    store = Store(tmp_path / "r.db")
    long_prompt = "x" * (MAX_PARAM_VALUE + 10)
    opened = record(k=4, prompt=long_prompt, labels=["a", "b"])
    run_id = store.start_run(opened)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MlflowTracker(tmp_path / "r.db", session="s", uri=uri)
    tracker.on_run_started(run_id=run_id, record=opened)
    other = dataclasses.replace(opened, session="another")
    tracker.on_run_started(run_id=99, record=other)  # another session's run: not mirrored
    tracker.on_train_log(run_id=run_id, step=2, split="train", name="loss", value=1.5)
    store.finish_run(run_id, status, None if status == "finished" else "ValueError: boom")
    tracker.on_run_finished(run_id=run_id, status=status)
    tracker.close()
    store.close()
    client = MlflowClient(tracking_uri=uri)
    (run,) = mlflow_runs(uri).values()
    assert run.info.status == expected and run.info.run_name == "few-shot-seed3"
    assert run.data.tags["tunebench.error" if status != "finished" else "tunebench.status"] == (
        "ValueError: boom" if status != "finished" else "finished")
    params = run.data.params
    assert params["few-shot.k"] == "4" and params["few-shot.labels"] == '["a", "b"]'
    assert params["package.torch"] == "2"
    assert params["few-shot.prompt"] == long_prompt[:MAX_PARAM_VALUE - 1] + "…"
    whole = json.loads(Path(client.download_artifacts(
        run.info.run_id, "tunebench/run.json", str(tmp_path))).read_text())
    assert whole["config"]["prompt"] == long_prompt  # nothing lost to the param limit
    assert history(client, run.info.run_id, "train_loss") == [(2, 1.5)]
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the local store


def test_a_bad_tracking_uri_warns_once_and_the_hooks_go_on(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "r.db", uri="nonsense://nowhere")
    with pytest.warns(MlflowTrackingWarning, match="nonsense://nowhere") as caught:
        tracker.on_run_started(run_id=1, record=record())
        tracker.on_train_log(run_id=1, step=1, split="train", name="loss", value=1.0)
        tracker.on_run_started(run_id=2, record=record())
        tracker.on_run_finished(run_id=1, status="finished")
    assert len(caught) == 1
    assert tracker.failure is not None and tracker.failure.startswith("starting run 1: ")
    assert tracker.logged == []
