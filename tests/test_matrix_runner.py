"""Experiment matrices end to end: a sweep x seeds matrix run locally, and its seed-1 cells
run on a Ray cluster of two nodes, must write the same rows; ``--resume`` re-runs nothing
finished; a failing cell fails alone, at once; a cell whose worker is killed mid-cell finishes
on a retry (``--ray-retries``) with clean rows, and fails as any error does without one;
training cells ask Ray for a GPU; the driver mirrors the cells it imports into MLflow."""

import json
import secrets
import signal
import socket

import pytest

from tests.conftest import query_db as rows
from tests.conftest import run_suites, start_suites, wait_while_running

# The experiment runner in subprocesses and a Ray cluster; one xdist worker runs them all, so
# the module's fixtures (a local matrix, a Ray cluster) are built once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("matrix")]

SWEEP = ["--sweep", "lora.r=2,4"]
MATRIX = ["--approach=zero-shot,lora", *SWEEP, "--seeds=0,1", "--budget=smoke"]
RAY_SEED = 1
"""The Ray matrix runs the local matrix's lora cells of this seed (a cell's rows do not depend
on the matrix around it), plus a failing cell, a dying one and one killed once (``lost-once``,
zero-shot under another name, whose rows stand for zero-shot's: tests/helpers/ray_plugins.py)."""
RAY_RETRIES = 1
"""``--ray-retries`` of the Ray matrix: enough for ``lost-once``; ``dying`` uses it up."""
MEASURED = "suite NOT IN ('prepare', 'latency')"
"""Metrics that depend on the candidate, not on the machine's speed."""
FIRST_SESSION = "r.session = (SELECT session FROM runs ORDER BY id LIMIT 1)"
"""Runs of the first call (later calls may add runs)."""


def _measurements(db, approaches=("zero-shot", "lora")) -> dict[tuple, float]:
    found = rows(db, "SELECT r.approach, r.seed, r.sweep_json, m.suite, m.name, m.value "
                     f"FROM metrics m JOIN runs r ON r.id = m.run_id WHERE {MEASURED} "
                     f"AND r.status = 'finished' AND {FIRST_SESSION} AND r.seed = ?",
                 RAY_SEED)
    return {(r["approach"], r["seed"], r["sweep_json"], r["suite"], r["name"]): r["value"]
            for r in found if r["approach"] in approaches}


def _executor(run) -> dict:
    return json.loads(run["info_json"])["executor"]


def _finished(db) -> int:
    """Finished runs in the results file ``db`` of a running driver: 0 until the driver has
    created it (it opens it when the first cell comes back; the file exists a moment before
    its tables)."""
    if not db.exists() or not rows(db, "SELECT count(*) FROM sqlite_master "
                                       "WHERE name = 'runs'")[0][0]:
        return 0
    return rows(db, "SELECT count(*) FROM runs WHERE status = 'finished'")[0][0]


@pytest.fixture(scope="module")
def local_matrix(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    args = [*MATRIX, f"--model={tiny_model_dir}", "--results=r.db", "-v"]
    env = {"TUNEBENCH_CACHE": str(folder / "cache")}
    first = run_suites(args, folder, env=env, suites=["test_accuracy.py"])
    return folder, args, env, first


def test_every_cell_is_a_run_named_by_its_point(local_matrix):
    folder, _, _, result = local_matrix
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_choice_accuracy[lora[r=4]-seed1] PASSED" in result.stdout
    runs = rows(folder / "r.db", "SELECT approach, seed, sweep_json, config_json, config_hash, "
                                 "cell_hash FROM runs ORDER BY id")
    assert [(r["approach"], json.loads(r["sweep_json"]).get("lora.r"), r["seed"])
            for r in runs] == [("zero-shot", None, 0), ("zero-shot", None, 1),
                               ("lora", 2, 0), ("lora", 2, 1), ("lora", 4, 0), ("lora", 4, 1)]
    assert [json.loads(r["config_json"])["r"] for r in runs[2:]] == [2, 2, 4, 4]
    assert len({r["config_hash"] for r in runs}) == 3  # zero-shot, r=2, r=4
    assert all(r["cell_hash"] for r in runs) and len({r["cell_hash"] for r in runs}) == 6
    summary = result.stdout.split("tunebench results")[1]
    assert "lora[r=2] seed=1" in summary  # the summary names the points, grouped
    assert summary.index("lora[r=2] seed=0") < summary.index("lora[r=4] seed=0")


def test_resume_reuses_finished_cells_and_reruns_failed_ones(local_matrix):
    folder, args, env, _ = local_matrix
    again = run_suites([*args, "--resume", "-p", "runner_plugins",
                        "--approach=broken"], folder, env=env, suites=["test_accuracy.py"])
    assert again.returncode == 1  # the broken cell fails; nothing else ran
    assert "12 skipped" in again.stdout and "reused 6 finished cell(s)" in again.stdout
    runs = rows(folder / "r.db", "SELECT approach, status FROM runs ORDER BY id")
    assert [(r["approach"], r["status"]) for r in runs[6:]] == [("broken", "failed")] * 2
    third = run_suites([*args, "--resume", "-p", "runner_plugins", "--approach=broken"],
                       folder, env=env, suites=["test_accuracy.py"])
    runs = rows(folder / "r.db", "SELECT approach, status FROM runs ORDER BY id")
    assert third.returncode == 1 and len(runs) == 10  # the failed cells ran again, alone
    other = run_suites([*args, "--resume"], folder, env=env,
                       suites=["test_accuracy.py", "test_overfitting.py"])
    assert other.returncode == 0 and "reused" not in other.stdout  # other tests: run again


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A Ray cluster of two nodes on this machine (``ray.cluster_utils.Cluster``: a head and a
    worker node, each with its own raylet and object store), each with 1 CPU and a declared
    (fake) GPU, under Ray's token authentication as the README's recipe sets it up: the nodes,
    and the drivers started from here, have ``RAY_AUTH_MODE=token`` and the token's file."""
    token = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "num_gpus": 1, "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1, num_gpus=1)
            cluster.wait_for_nodes()
            yield cluster
        finally:
            cluster.shutdown()


@pytest.fixture(scope="module")
def ray_matrix(tiny_model_dir, ray_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray")
    env = {"TUNEBENCH_CACHE": str(folder / "cache"), "RAY_ADDRESS": ray_cluster.address,
           "TUNEBENCH_TEST_KILLED": str(folder / "killed"),
           "MLFLOW_TRACKING_URI": None, "MLFLOW_EXPERIMENT_NAME": None}
    args = ["--approach=lora", *SWEEP, f"--seeds={RAY_SEED}", "--budget=smoke",
            f"--model={tiny_model_dir}", "--results=r.db", "--executor=ray", "--mlflow",
            "-p", "runner_plugins", "-p", "ray_plugins", "--approach=broken,dying,lost-once",
            f"--ray-retries={RAY_RETRIES}", "-v"]
    result = run_suites(args, folder, env=env, suites=["test_accuracy.py"])
    return folder, args, env, result


def test_ray_writes_the_rows_a_local_run_writes(local_matrix, ray_matrix):
    folder, _, _, result = ray_matrix
    local = _measurements(local_matrix[0] / "r.db", ("lora",))
    remote = _measurements(folder / "r.db", ("lora",))
    assert len(local) >= 2 * 4
    assert remote == local, result.stdout[-3000:]
    count = ("SELECT r.approach, r.seed, r.sweep_json, e.suite, count(*) AS n FROM examples e "
             f"JOIN runs r ON r.id = e.run_id WHERE {FIRST_SESSION} AND r.seed = ? "
             "AND r.approach = 'lora' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
    assert [tuple(r) for r in rows(folder / "r.db", count, RAY_SEED)] == [
        tuple(r) for r in rows(local_matrix[0] / "r.db", count, RAY_SEED)]
    assert "cells submitted to Ray" in result.stdout
    assert "5/5 cells, 2 failed" in result.stdout  # one progress line per finished cell


def test_the_matrix_ran_on_both_nodes(ray_matrix, ray_cluster):
    folder, *_ = ray_matrix
    nodes = {node for run in rows(folder / "r.db", "SELECT info_json FROM runs")
             for node in _executor(run)["nodes"]}
    assert nodes == {node.node_id for node in ray_cluster.list_all_nodes()}


def test_a_cell_whose_worker_is_killed_mid_cell_finishes_on_a_retry(local_matrix, ray_matrix,
                                                                   ray_cluster):
    folder, _, _, result = ray_matrix
    killed = json.loads((folder / "killed").read_text())  # written by the killed attempt
    assert (f"retrying lost-once after a lost worker (attempt 2 of {RAY_RETRIES + 1})"
            in result.stdout), result.stdout[-3000:]
    assert f"lost-once finished on {socket.gethostname()}" in result.stdout
    runs = rows(folder / "r.db", "SELECT * FROM runs WHERE approach = 'lost-once'")
    assert [r["status"] for r in runs] == ["finished"]  # one run: nothing of the dead attempt
    executor = _executor(runs[0])
    assert executor["attempts"] == 2
    assert executor["hosts"] == [socket.gethostname()] * 2
    assert executor["nodes"][0] == killed["node"]  # where the killed attempt ran
    assert set(executor["nodes"]) <= {n.node_id for n in ray_cluster.list_all_nodes()}
    assert executor["node"] == executor["nodes"][1]
    assert len(executor["lost"]) == 1 and "WorkerCrashedError" in executor["lost"][0]
    assert runs[0]["pid"] != killed["pid"]  # its rows were written by the second attempt
    # the rows of a whole cell, once: zero-shot's, which lost-once is under another name
    local = {key[2:]: value for key, value in _measurements(local_matrix[0] / "r.db").items()
             if key[0] == "zero-shot"}
    retried = {key[2:]: value for key, value
               in _measurements(folder / "r.db", ("lost-once",)).items()}
    assert retried == local and len(local) >= 4
    count = ("SELECT e.suite, count(*) FROM examples e JOIN runs r ON r.id = e.run_id "
             f"WHERE {FIRST_SESSION} AND r.approach = ? AND r.seed = ? GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in rows(folder / "r.db", count, "lost-once", RAY_SEED)] == [
        tuple(r) for r in rows(local_matrix[0] / "r.db", count, "zero-shot", RAY_SEED)]


def test_failing_cells_are_marked_failed_and_the_others_finish(ray_matrix):
    folder, _, _, result = ray_matrix
    assert result.returncode == 1
    assert "test_choice_accuracy[broken] ERROR" in result.stdout
    assert "deliberate failure in prepare" in result.stdout
    runs = rows(folder / "r.db", "SELECT approach, status, error, info_json FROM runs")
    statuses = {(r["approach"], r["status"]) for r in runs}
    assert statuses == {("lora", "finished"),
                        ("lost-once", "finished"), ("broken", "failed"), ("dying", "failed")}
    assert sum(r["status"] == "finished" for r in runs) == 3 and len(runs) == 5
    # the cell's own exception: failed at once, never retried
    broken = [r for r in runs if r["approach"] == "broken"]
    assert all("deliberate failure" in r["error"] for r in broken)
    assert [_executor(r)["attempts"] for r in broken] == [1]
    assert "retrying broken" not in result.stdout
    # a worker that dies on every attempt: retried until --ray-retries is used up, then Ray's
    # error is the run's error and every test of the cell's
    died = [r for r in runs if r["approach"] == "dying"]
    assert len(died) == 1 and "WorkerCrashedError" in died[0]["error"], died[0]["error"]
    assert f"--ray-retries={RAY_RETRIES} allows no more" in died[0]["error"]
    assert _executor(died[0])["attempts"] == RAY_RETRIES + 1
    assert len(_executor(died[0])["lost"]) == RAY_RETRIES + 1
    assert "retrying dying after a lost worker (attempt 2 of 2)" in result.stdout
    assert "test_choice_accuracy[dying] ERROR" in result.stdout


def test_training_cells_ask_ray_for_a_gpu(ray_matrix):
    folder, *_ = ray_matrix
    runs = rows(folder / "r.db", "SELECT approach, info_json FROM runs "
                                 "WHERE status = 'finished'")
    executor = {r["approach"]: json.loads(r["info_json"])["executor"] for r in runs}
    assert executor["lora"]["name"] == "ray"
    assert executor["lora"]["resources"].get("GPU") == 1.0
    assert executor["lora"]["resources"].get("CPU") == 1.0
    assert "GPU" not in executor["lost-once"]["resources"]  # zero-shot: nothing to train


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")  # MLflow's SQLite store
def test_ray_cells_are_mirrored_by_the_driver_as_it_imports_them(ray_matrix, tmp_path):
    """``--executor=ray --mlflow``: cells run in Ray workers, the driver mirrors the rows it
    imports (and the failure record of a cell whose worker died)."""
    from mlflow import MlflowClient

    from plugins.mlflow_records import key
    from tests.test_mlflow_tracking import mlflow_runs, table_rows

    folder, *_ = ray_matrix
    uri = f"sqlite:///{folder}/mlflow.db"
    client, runs = MlflowClient(tracking_uri=uri), mlflow_runs(uri)
    stored = rows(folder / "r.db", "SELECT * FROM runs ORDER BY id")
    assert sorted(runs) == [row["id"] for row in stored]
    assert {row["approach"] for row in stored} == {"lora", "broken", "dying",
                                                   "lost-once"}
    for row in stored:
        run = runs[row["id"]]
        assert run.info.status == {"finished": "FINISHED", "failed": "FAILED"}[row["status"]]
        assert run.data.tags.get("tunebench.error") == row["error"]
        metrics = rows(folder / "r.db", "SELECT * FROM metrics WHERE run_id = ?", row["id"])
        assert all(run.data.metrics[key(m["name"])] == pytest.approx(m["value"])
                   for m in metrics)
        examples = rows(folder / "r.db", "SELECT suite, count(*) FROM examples WHERE "
                                         "run_id = ? GROUP BY suite", row["id"])
        assert [(suite, table_rows(client, run.info.run_id, f"examples/{suite}.json",
                                   tmp_path)) for suite, _ in examples] == [
            tuple(e) for e in examples]
        assert bool(metrics) == (row["status"] == "finished")


def test_resume_on_ray_reruns_nothing_finished(ray_matrix):
    """Also: with ``--ray-retries 0`` a lost worker fails its cell at once, as before retries."""
    folder, args, env, _ = ray_matrix
    again = run_suites([*args, "--resume", "--ray-retries=0"], folder, env=env,
                       suites=["test_accuracy.py"])
    assert "reused 3 finished cell(s)" in again.stdout, again.stdout[-3000:]
    assert "2 cells submitted to Ray" in again.stdout  # only the failed cells, again
    runs = rows(folder / "r.db", "SELECT approach, error, info_json FROM runs ORDER BY id")
    assert sorted(r["approach"] for r in runs[5:]) == ["broken", "dying"]
    died = next(r for r in runs[5:] if r["approach"] == "dying")
    assert "WorkerCrashedError" in died["error"] and _executor(died)["attempts"] == 1
    assert "--ray-retries=0 allows no more" in died["error"]
    assert "retrying" not in again.stdout


def test_ray_retries_must_not_be_negative(tiny_model_dir, tmp_path):
    result = run_suites(["--executor=ray", "--ray-retries=-1", "--approach=zero-shot",
                         f"--model={tiny_model_dir}"], tmp_path, suites=["test_accuracy.py"])
    assert result.returncode == 4  # pytest's usage error, before Ray is reached
    assert "--ray-retries=-1: give how many times" in result.stdout + result.stderr


def test_a_ray_client_address_is_refused_with_what_to_use_instead(tiny_model_dir, tmp_path):
    result = run_suites(["--executor=ray", "--approach=zero-shot", f"--model={tiny_model_dir}"],
                        tmp_path, env={"RAY_ADDRESS": "ray://head:10001"},
                        suites=["test_accuracy.py"])
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Run the driver on a node of the cluster with RAY_ADDRESS=<head>:6379" in (
        result.stdout + result.stderr)


def test_ctrl_c_on_the_driver_cancels_cells_and_marks_them_interrupted(
        tiny_model_dir, ray_cluster, tmp_path):
    marker = tmp_path / "marker"
    process = start_suites(
        ["-p", "runner_plugins", "--approach=zero-shot,sleepy", "--budget=smoke",
         f"--model={tiny_model_dir}", "--results=r.db", "-q", "--executor=ray"], tmp_path,
        env={"TUNEBENCH_TEST_MARKER": str(marker), "RAY_ADDRESS": ray_cluster.address,
             "TUNEBENCH_CACHE": str(tmp_path / "cache")}, suites=["test_accuracy.py"])
    wait_while_running(process, lambda: marker.exists() and _finished(tmp_path / "r.db") == 1,
                       "the cells never got going")
    process.send_signal(signal.SIGINT)
    output = "".join(process.communicate(timeout=120))
    assert process.returncode == 2, output  # pytest's "interrupted"
    runs = {r["approach"]: r for r in rows(tmp_path / "r.db", "SELECT * FROM runs")}
    assert runs["zero-shot"]["status"] == "finished"  # what finished is kept
    assert runs["sleepy"]["status"] == "interrupted"
    assert "Ctrl-C" in runs["sleepy"]["error"]
    assert _executor(runs["sleepy"])["attempts"] == 1
    assert rows(tmp_path / "r.db", "PRAGMA integrity_check")[0][0] == "ok"
