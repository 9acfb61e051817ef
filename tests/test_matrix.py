"""Experiment matrices: parsing ``--sweep``, the cells, their hashes, and the summary."""

import json

import pytest

from harness.core import plugins
from harness.core.overrides import OverrideError
from harness.runner.matrix import Cell, build_cells, check_sweeps, parse_sweeps, point_label
from harness.runner.session import ExperimentSession, SessionOptions
from harness.runner.store import RunRecord, Store
from harness.runner.summary import session_table


@pytest.fixture(scope="module")
def registry():
    return plugins.approaches()


def test_sweep_values_are_typed_like_set_values(registry):
    [beta, modules] = parse_sweeps(
        ["dpo.beta=0.05, 0.3", "lora.target_modules=q_proj,v_proj;q_proj"], registry)
    assert (beta.key, beta.values) == ("dpo.beta", (0.05, 0.3))
    assert modules.values == (["q_proj", "v_proj"], ["q_proj"])  # ';' separates list points


@pytest.mark.parametrize(("item", "message"), [
    ("dpo.beta", "expected approach.field=value,value"),
    ("dpo.bta=0.1", "Did you mean 'beta'"),
    ("lora.r=2,many", "--sweep 'lora.r=many': expected int"),
    ("lora.r=2,2", "a value is repeated"),
    ("nothing.r=2", "unknown approach"),
])
def test_a_bad_sweep_names_what_is_wrong(registry, item, message):
    with pytest.raises((OverrideError, KeyError), match=message):
        parse_sweeps([item], registry)


def test_the_same_sweep_twice_is_refused(registry):
    with pytest.raises(OverrideError, match="given twice"):
        parse_sweeps(["lora.r=2", "lora.r=4"], registry)


def test_cells_cross_approaches_sweep_grids_and_seeds(registry):
    sweeps = parse_sweeps(["dpo.beta=0.1,0.3", "dpo.learning_rate=1e-5,1e-4"], registry)
    cells = build_cells(["zero-shot", "dpo", "lora+dpo"], sweeps, [0, 1])
    assert len(cells) == 2 + 4 * 2 + 4 * 2
    assert [c.id for c in cells[:4]] == [
        "zero-shot-seed0", "zero-shot-seed1",
        "dpo[beta=0.1,learning_rate=1e-05]-seed0", "dpo[beta=0.1,learning_rate=1e-05]-seed1"]
    composed = cells[-1]
    assert composed.label == "lora+dpo[dpo.beta=0.3,dpo.learning_rate=0.0001]"
    assert composed.overrides() == {"dpo": {"beta": 0.3, "learning_rate": 1e-4}}
    one_seed = build_cells(["dpo"], sweeps[:1], [7])
    assert [c.id for c in one_seed] == ["dpo[beta=0.1]", "dpo[beta=0.3]"]
    assert point_label("dpo", {}) == "dpo"


def test_a_sweep_must_name_an_approach_being_run_and_not_fight_a_set(registry):
    sweeps = parse_sweeps(["dpo.beta=0.1,0.3"], registry)
    with pytest.raises(OverrideError, match="add --approach=dpo"):
        check_sweeps(sweeps, ["zero-shot"], {})
    with pytest.raises(OverrideError, match="keep one"):
        check_sweeps(sweeps, ["dpo"], {"dpo": {"beta": 0.2}})
    check_sweeps(sweeps, ["lora+dpo"], {"lora": {"r": 4}})  # a part of a composition counts


def session(tmp_path, tiny_model_dir, **options) -> ExperimentSession:
    return ExperimentSession(SessionOptions(
        approaches=options.pop("approaches", []), model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", **options))


def test_each_point_is_its_own_config_and_hash(tmp_path, tiny_model_dir):
    s = session(tmp_path, tiny_model_dir, sweeps=["few-shot.k=2,4"], seeds=[0, 1])
    assert s.options.approaches == ["few-shot"]  # no --approach: the swept ones run
    cells = s.cells
    assert [c.id for c in cells] == ["few-shot[k=2]-seed0", "few-shot[k=2]-seed1",
                                     "few-shot[k=4]-seed0", "few-shot[k=4]-seed1"]
    records = [s.run_record(c.approach, c.seed, point=c.point) for c in cells]
    assert [r.config["k"] for r in records] == [2, 2, 4, 4]
    assert [r.sweep for r in records] == [{"few-shot.k": 2}] * 2 + [{"few-shot.k": 4}] * 2
    assert records[0].config_hash == records[1].config_hash != records[2].config_hash
    hashes = {s.cell_hash(c, ["suites/test_accuracy.py::test_choice_accuracy"]) for c in cells}
    assert len(hashes) == 4
    fewer = s.cell_hash(cells[0], [])
    assert fewer != s.cell_hash(cells[0], ["suites/test_accuracy.py::test_choice_accuracy"])


def test_a_point_a_config_refuses_fails_before_anything_runs(tmp_path, tiny_model_dir):
    s = session(tmp_path, tiny_model_dir, sweeps=["lora.r=4,-1"])
    with pytest.raises(ValueError, match=r"--sweep point lora\[r=-1\]: .*positive integer"):
        _ = s.cells
    assert not (tmp_path / "r.db").exists()


def test_only_a_finished_run_of_the_same_cell_is_found(tmp_path, tiny_model_dir):
    s = session(tmp_path, tiny_model_dir, approaches=["zero-shot"])
    cell = s.cells[0]
    key = s.cell_hash(cell, [])
    assert s.finished_run(key) is None  # no database yet: nothing to reuse
    with s.open_run(cell.approach, cell.seed, cell_hash=key) as run:
        pass
    assert s.finished_run(key) == run.id
    with pytest.raises(RuntimeError), s.open_run(cell.approach, cell.seed,
                                                  cell_hash="crashed"):
        raise RuntimeError("a suite crashed")
    assert s.finished_run("crashed") is None  # failed: runs again
    s.failed_cells.add("test failed")
    with s.open_run(cell.approach, cell.seed, cell_hash="test failed"):
        pass
    assert s.finished_run("test failed") is None  # a test of the cell failed: runs again
    s.close()


def _run(store: Store, approach: str, seed: int, sweep: dict, value: float,
         session: str = "s") -> int:
    run_id = store.start_run(RunRecord(
        session=session, approach=approach, task="prefs", model="m", seed=seed,
        budget="smoke", config={}, config_hash="c", data_hash="d", model_version="v",
        code_version="x", packages={}, device="cpu", sweep=sweep))
    store.add_metric(run_id, "preferences", "judge_reward", value, higher_is_better=True)
    store.finish_run(run_id, "finished")
    return run_id


def test_the_summary_groups_points_and_names_reused_cells(tmp_path):
    store = Store(tmp_path / "r.db")
    old = _run(store, "dpo", 0, {"dpo.beta": 0.1}, 0.5, session="earlier")
    _run(store, "dpo", 0, {"dpo.beta": 0.3}, 0.4)  # finished first on another worker
    _run(store, "zero-shot", 0, {}, 0.3)
    _run(store, "dpo", 0, {"dpo.beta": 0.05}, 0.6)
    table = session_table(store, "s", tmp_path / "r.db", plugins.metrics(),
                          reused={"dpo[beta=0.1]": old})
    lines = [line.split()[0] for line in table.splitlines()[2:6]]
    assert lines == ["dpo[beta=0.05]", "dpo[beta=0.1]", "dpo[beta=0.3]", "zero-shot"]
    assert f"reused (run {old})" in table
    assert f"reused 1 finished cell(s) from earlier runs (--resume), not run again: " \
           f"dpo[beta=0.1] (run {old})" in table
    store.close()


def test_exported_runs_import_as_new_runs_with_references_rewritten(tmp_path):
    worker = Store(tmp_path / "worker.db")
    main_run = _run(worker, "lora", 0, {"lora.r": 2}, 0.5)
    side = _run(worker, "lora", 0, {"lora.r": 2}, 0.7)
    worker.add_metric(main_run, "overfitting", "data_efficiency[64]", 0.7,
                      extra={"run_id": side})
    worker.add_examples(main_run, "accuracy", [{"item_id": "a", "prompt": "p", "correct": 1}])
    worker.add_curve_points(side, [(1, "train", "loss", 2.0)])
    exported = worker.export_runs()
    driver = Store(tmp_path / "driver.db")
    _run(driver, "zero-shot", 0, {}, 0.1)  # ids differ from the worker's
    ids = driver.import_runs(exported, session="driver", info={"executor": {"name": "ray"}})
    assert ids == [side, side + 1]  # after the driver's own run: every id moves
    rows = driver.query("SELECT session, sweep_json, info_json FROM runs WHERE id = ?",
                        (ids[0],))
    assert rows[0]["session"] == "driver" and json.loads(rows[0]["sweep_json"]) == {
        "lora.r": 2}
    assert json.loads(rows[0]["info_json"])["executor"] == {"name": "ray"}
    [extra] = driver.query("SELECT extra_json FROM metrics WHERE name = ?",
                           ("data_efficiency[64]",))
    assert json.loads(extra[0])["run_id"] == ids[1]
    assert driver.query("SELECT count(*) FROM examples WHERE run_id = ?", (ids[0],))[0][0] == 1
    assert driver.query("SELECT count(*) FROM curves WHERE run_id = ?", (ids[1],))[0][0] == 1


def test_cell_ids_are_stable_keys():
    cell = Cell("dpo", 1, (("dpo.beta", 0.3),), name_seed=True)
    assert cell.id == "dpo[beta=0.3]-seed1" and cell.label == "dpo[beta=0.3]"
    assert cell.sweep == {"dpo.beta": 0.3}
