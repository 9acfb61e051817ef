"""``python -m reports.export --format lm-eval-json | model-card`` on a real smoke session.

The lm-eval files are read back with lm-eval's own code (``make_table``, the results-file name
helpers, ``mean_stderr``, the ``EvalResults`` schema); the model cards with PyYAML and
huggingface_hub's card readers; and a cached candidate with its card must still reload as a
cache hit in the next session.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from lm_eval.api.metrics import mean_stderr
from lm_eval.result_schema import EvalResults
from lm_eval.utils import get_latest_filename, get_results_filenames, make_table

from harness.runner.session import ExperimentSession, SessionOptions
from harness.runner.store import Store
from harness.train.trained import MANIFEST, cache_problem, file_checksums
from reports import export, model_card
from tests.conftest import copy_of, query_db


@pytest.fixture
def session(smoke_comparison):
    """The shared smoke session (zero-shot, few-shot and lora) on the tiny model."""
    folder, result = smoke_comparison
    assert result.returncode == 0, result.stdout + result.stderr
    return {"db": folder / "r.db"}


def private_copy(session, tmp_path) -> Path:
    """A copy of the shared session's results file whose lora run points at a copy of its
    candidate, for a test that writes into the candidate's folder."""
    db = tmp_path / "r.db"
    shutil.copy(session["db"], db)
    candidate = copy_of(lora_folder(db), tmp_path / "candidate")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET info_json = json_set(info_json, '$.artifact_dir', ?) "
                     "WHERE approach = 'lora'", (str(candidate),))
    conn.close()
    return db


def stored(db, approach, name):
    return query_db(db, "SELECT m.* , r.id AS rid FROM metrics m JOIN runs r ON r.id = m.run_id "
                        "WHERE r.approach = ? AND m.name = ? ORDER BY m.id DESC LIMIT 1",
                    approach, name)[0]


def lora_folder(db):
    info = json.loads(query_db(db, "SELECT info_json FROM runs WHERE approach = 'lora'")[0][0])
    return Path(info["artifact_dir"])


@pytest.mark.slow
def test_lm_eval_json_is_read_by_lm_evals_own_result_code(session, tmp_path, capsys):
    db, out = session["db"], tmp_path / "lm"
    assert export.main(["--db", str(db), "--format", "lm-eval-json", "--out", str(out)]) == 0
    files = sorted(str(p) for p in out.rglob("*.json"))
    assert len(files) == 3 and get_results_filenames(files) == files  # results_<date>.json
    schema = set(EvalResults.__annotations__)
    for approach in ("zero-shot", "lora"):
        accuracy = stored(db, approach, "accuracy")
        mine = [f for f in files if f"{approach}-run{accuracy['rid']}" in f]
        assert get_latest_filename(mine) == mine[0]
        loaded = json.loads(Path(mine[0]).read_text(encoding="utf-8"))
        assert set(loaded) - {"tunebench"} <= schema  # every other key is lm-eval's
        assert {"results", "group_subtasks", "configs", "versions", "n-shot",
                "higher_is_better", "n-samples", "config", "git_hash", "date", "model_name",
                "task_hashes"} <= set(loaded)
        row = loaded["results"]["sentiment"]
        assert row["acc,none"] == accuracy["value"] and row["alias"] == "sentiment"
        items = [r["correct"] for r in query_db(
            db, "SELECT correct FROM examples WHERE run_id = ? AND suite = 'accuracy.choice'",
            accuracy["rid"])]
        assert row["acc_stderr,none"] == pytest.approx(mean_stderr(items))  # lm-eval's own
        assert loaded["n-samples"]["sentiment"] == {"original": 40, "effective": 40}
        assert loaded["higher_is_better"]["sentiment"] == {"acc": True}
        rows = [line.split("|") for line in make_table(loaded).splitlines()
                if line.startswith("|sentiment")]  # Tasks|Version|Filter|n-shot|Metric|...
        assert len(rows) == 1 and [c.strip() for c in rows[0][3:6]] == ["none", "0", "acc"]
        assert float(rows[0][7]) == pytest.approx(accuracy["value"], abs=1e-4)
        assert float(rows[0][9]) == pytest.approx(row["acc_stderr,none"], abs=1e-4)
        extra = loaded["tunebench"]
        assert extra["headline"]["ci95"] == [accuracy["ci_low"], accuracy["ci_high"]]
        assert {"forgetting_delta", "nll_per_token_delta"} <= set(extra["metrics"]["forgetting"])
        assert "latency_p50_ms" in extra["metrics"]["latency"]
        run = query_db(db, "SELECT * FROM runs WHERE id = ?", accuracy["rid"])[0]
        assert extra["provenance"]["data_hash"] == run["data_hash"] == \
            loaded["task_hashes"]["sentiment"]
        assert extra["provenance"]["config_hash"] == run["config_hash"]
        assert extra["provenance"]["results_file"] == str(db.resolve())
        assert loaded["model_name_sanitized"] in mine[0]
    assert "3 file(s) written" in capsys.readouterr().out


@pytest.mark.slow
def test_model_card_metadata_is_read_by_huggingface_hub(session, tmp_path):
    db = private_copy(session, tmp_path)
    folder = lora_folder(db)
    weights = file_checksums(folder)["adapter_model.safetensors"]
    assert export.main(["--db", str(db), "--format", "model-card"]) == 0
    card = folder / "README.md"
    text = card.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    accuracy = stored(db, "lora", "accuracy")
    assert front["library_name"] == "peft" and "lora" in front["tags"]
    assert metadata_load(card) == front
    loaded = ModelCard.load(card)
    results = loaded.data.eval_results
    assert results and results[0].metric_type == "accuracy"
    assert results[0].metric_value == accuracy["value"]
    name, again = model_index_to_eval_results(front["model-index"])
    assert "lora" in name and again[0].dataset_type == "sentiment"
    assert f"[{accuracy['ci_low']:.3f}, {accuracy['ci_high']:.3f}]" in text
    assert "PeftModel.from_pretrained" in text and "forgetting_delta" in text
    assert query_db(db, "SELECT data_hash FROM runs WHERE approach = 'lora'")[0][0] in text
    assert cache_problem(folder) is None  # the card is in the manifest
    assert file_checksums(folder)["adapter_model.safetensors"] == weights


@pytest.mark.slow  # trains and saves a candidate
def test_a_candidate_with_its_card_reloads_as_a_cache_hit(tiny_model_dir, tmp_path, monkeypatch):
    # In one process, train then reload at once: the cache key hashes the project's sources.
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "cache"))
    db = tmp_path / "r.db"

    def lora_run():
        session = ExperimentSession(SessionOptions(
            approaches=["lora"], model=str(tiny_model_dir), budget="smoke", results=db))
        with session.open_run("lora") as run:
            return dict(run.candidate.info)

    trained = lora_run()
    assert trained["cache_hit"] is False
    written, skipped = export.export_files(db, "model-card", None)
    folder = Path(trained["artifact_dir"])
    assert written == [folder / "README.md"] and not skipped
    assert "tunebench" in metadata_load(folder / "README.md")["tags"]
    reloaded = lora_run()
    assert reloaded["cache_hit"] is True and "cache_miss" not in reloaded
    assert reloaded["artifact_dir"] == str(folder)
    assert "tunebench" in metadata_load(folder / "README.md")["tags"]  # not retrained away


@pytest.mark.slow
def test_model_card_out_copies_and_leaves_the_cache_alone(session, tmp_path):
    db = session["db"]
    folder = lora_folder(db)
    before = file_checksums(folder)
    assert export.main(["--db", str(db), "--format", "model-card", "--out",
                        str(tmp_path / "cards")]) == 0
    run_id = query_db(db, "SELECT id FROM runs WHERE approach = 'lora'")[0][0]
    assert [p.relative_to(tmp_path / "cards").as_posix() for p in
            (tmp_path / "cards").rglob("*.md")] == [f"{run_id}-lora/README.md"]
    assert file_checksums(folder) == before


@pytest.mark.slow
def test_tampered_or_gone_candidates_get_no_card(session, tmp_path, capsys):
    copy = tmp_path / "candidate"
    shutil.copytree(lora_folder(session["db"]), copy)
    (copy / "adapter_model.safetensors").write_bytes(b"changed")
    manifest = (copy / MANIFEST).read_text()
    with pytest.raises(model_card.CardError, match="does not match its SHA-256"):
        model_card.write_into_candidate(copy, "---\n---\n")
    assert (copy / MANIFEST).read_text() == manifest  # nothing blessed
    db = tmp_path / "r.db"
    shutil.copy(session["db"], db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET info_json = json_set(info_json, '$.artifact_dir', ?) "
                     "WHERE approach = 'lora'", (str(tmp_path / "cleaned"),))
    assert export.main(["--db", str(db), "--format", "model-card"]) == 1
    assert "is gone (cache cleaned or moved)" in capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM metrics WHERE run_id IN "
                     "(SELECT id FROM runs WHERE approach = 'lora')")
        conn.execute("DELETE FROM examples WHERE run_id IN "
                     "(SELECT id FROM runs WHERE approach = 'lora')")
        conn.execute("DELETE FROM curves")
        conn.execute("DELETE FROM runs WHERE approach = 'lora'")
    assert export.main(["--db", str(db), "--format", "model-card"]) == 1
    assert "no trained candidates" in capsys.readouterr().err


@pytest.mark.slow
def test_format_overrides_the_extension(session, tmp_path):
    out = tmp_path / "report.html"
    assert export.main(["--db", str(session["db"]), "--format", "markdown",
                        "--out", str(out)]) == 0
    assert out.read_text().startswith("# tunebench report")


def test_usage_errors_and_an_empty_database(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for argv, message in (
            (["--format", "lm-eval-json"], "--out is required for --format lm-eval-json"),
            (["--format", "lm-eval-json", "--out", str(tmp_path / "file")], "is a file"),
            (["--format", "model-card", "--out", str(tmp_path / "file")], "is a file"),
            (["--out", str(tmp_path)], "is a folder; --format html writes one file"),
            (["--format", "json"], "invalid choice")):
        with pytest.raises(SystemExit) as stop:
            export.main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err
    Store(tmp_path / "empty.db").close()
    assert export.main(["--db", str(tmp_path / "empty.db"), "--format", "lm-eval-json",
                        "--out", str(tmp_path / "lm")]) == 1
    assert "has no runs" in capsys.readouterr().err and not (tmp_path / "lm").exists()


def test_help_explains_each_format(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        export.main(["--help"])
    shown = capsys.readouterr().out
    for name in ("html:", "markdown:", "lm-eval-json:", "model-card:", "acc,none",
                 "results_<date>.json", "model-index", "<run-id>-<approach>/README.md"):
        assert name in shown
