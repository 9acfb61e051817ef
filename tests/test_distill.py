"""Knowledge distillation (plugins/distill.py, harness/train/distill.py) on the tiny model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.core.compose import ComposedApproach
from harness.models.lm_candidate import LMCandidate
from harness.models.student import evenly_spaced, keep_layers, parameter_count
from harness.runner.session import ExperimentSession, SessionOptions
from harness.testing import check_approach, make_tiny_model
from harness.train.distill import TeacherView, generalized_jsd, reply_ids
from tests.conftest import query_db, run_suites

pytestmark = pytest.mark.slow  # every test trains a student (seconds each): not in make test-fast


def session(tmp_path: Path, model: Path, approach: str, *overrides: str, task="sentiment",
            retrain=False) -> ExperimentSession:
    return ExperimentSession(SessionOptions(
        approaches=[approach], task=task, model=str(model), budget="smoke",
        results=tmp_path / "r.db", overrides=list(overrides), retrain=retrain))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("overrides", [
    ["distill.objective=on-policy", "distill.max_new_tokens=4"],
    ["distill.objective=sequence", "distill.max_new_tokens=4"],
    ["distill.weights=lora", "distill.beta=0.5", "distill.hard_label_weight=0.5"],
])
def test_every_objective_trains_and_reloads(overrides, tiny_model_dir, tmp_path):
    info = check_approach("distill", tiny_model_dir, tmp_path, overrides=overrides)
    chosen = dict(o.removeprefix("distill.").split("=") for o in overrides)
    assert info["objective"] == chosen.get("objective", "logits")
    assert info["teacher"] == "full-ft" and info["teacher_train_seconds"] > 0


@pytest.mark.slow  # a RAG teacher's whole distillation, end to end
def test_a_rag_teacher_distils_through_its_passages(tiny_model_dir, tmp_path):
    """A teacher that rewrites prompts is read through the prompts it really sees."""
    info = check_approach("rag+distill", tiny_model_dir, tmp_path, task="kb-qa",
                          overrides=["rag.retriever=bm25", "distill.max_length=1024"])
    assert info["teacher"] == "rag" and info["teacher_train_seconds"] == 0
    s = session(tmp_path, tiny_model_dir, "rag", "rag.retriever=bm25", task="kb-qa")
    with s.open_run("rag") as run:
        view = TeacherView(run.candidate)
        example = s.task_data().train[0]
        seen = s.load_base()[1].decode(view.prompt_ids([example.messages])[0])
    s.close()
    assert example.messages[-1]["content"] in seen and len(seen) > 2 * len(
        example.messages[-1]["content"]), "the teacher's prompt carries retrieved passages"


def test_the_cut_student_is_smaller_and_loads_on_its_own(tiny_model_dir, tmp_path):
    info = check_approach("distill", tiny_model_dir, tmp_path,
                          overrides=["distill.student_layers=1"])
    assert (info["student_layers"], info["teacher_layers"]) == (1, 2)
    assert info["student_params"] < info["teacher_params"]
    config = json.loads((Path(info["artifact_dir"]) / "config.json").read_text())
    assert config["num_hidden_layers"] == 1


def test_cutting_keeps_evenly_spaced_layers_and_a_working_cache(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kept = evenly_spaced(30, 15)
    assert len(kept) == 15 and (kept[0], kept[-1]) == (0, 29)
    assert all(1 <= b - a <= 3 for a, b in itertools.pairwise(kept))
    assert evenly_spaced(4, 2) == [0, 3] and evenly_spaced(5, 3) == [0, 2, 4]
    with pytest.raises(ValueError, match="choose 1 to 2"):
        evenly_spaced(2, 3)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    whole = parameter_count(model)
    last = model.model.layers[1]
    assert keep_layers(model, 1) == [0]
    assert len(model.model.layers) == model.config.num_hidden_layers == 1
    assert parameter_count(model) == whole - parameter_count(last)
    ids = tokenizer("positive review", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, min_new_tokens=3, do_sample=False)  # cached
    assert out.shape[1] == ids.shape[1] + 3


def test_retrain_trains_again_and_the_cache_is_reused_otherwise(tiny_model_dir, tmp_path,
                                                                cache):
    hits = []
    for retrain in (False, False, True):
        s = session(tmp_path, tiny_model_dir, "distill", retrain=retrain)
        with s.open_run("distill") as run:
            hits.append(run.candidate.info["cache_hit"])
        splits = {r[0] for r in s.store.query(
            "SELECT DISTINCT split FROM curves WHERE run_id = ?", (run.id,))}
        s.close()
        # the teacher's curves apart: the plain ones (the overfitting suite's) are the student's
        assert splits == {"full-ft/train", "full-ft/validation", "train", "validation"}
    assert hits == [False, True, False]


@pytest.mark.slow  # the runner in a subprocess
def test_a_teacher_that_cannot_run_on_the_task_fails_at_once(tiny_model_dir, tmp_path):
    result = run_suites(["--model", str(tiny_model_dir), "--budget=smoke",
                         "--approach=distill", "--set", "distill.teacher=rag",
                         f"--results={tmp_path / 'r.db'}"], tmp_path,
                        suites=["test_accuracy.py"])
    assert result.returncode == 4, result.stdout + result.stderr  # a usage error
    assert "no document corpus" in result.stdout + result.stderr
    assert not (tmp_path / "r.db").exists(), "nothing ran, nothing was recorded"


def test_compositions_name_the_teacher(tiny_model_dir, tmp_path):
    s = session(tmp_path, tiny_model_dir, "distill")
    alone = s.make_approach("distill")
    assert isinstance(alone, ComposedApproach) and alone.name == "distill"
    assert [p.name for p in alone.parts] == ["full-ft", "distill"]
    assert s.make_approach("lora+rag+distill").config_dict()["distill"]["teacher"] == "lora+rag"
    s.close()
    s = session(tmp_path, tiny_model_dir, "rag+distill", "distill.teacher=lora")
    with pytest.raises(ValueError, match="conflicts with the composition rag"):
        s.make_approach("rag+distill")
    s.close()
    s = session(tmp_path, tiny_model_dir, "distill", "distill.teacher=nope")
    with pytest.raises(ValueError, match="unknown approach 'nope'"):
        s.make_approach("distill")
    s.close()


def test_a_student_with_another_tokenizer_is_refused(tiny_model_dir, tmp_path, cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    other = tmp_path / "other"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_tokens(["<extra>"])
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(other)
    tokenizer.save_pretrained(other)
    s = session(tmp_path, tiny_model_dir, "distill", f"distill.student={other}")
    with pytest.raises(ValueError, match="vocabularies differ"), s.open_run("distill"):
        pass
    s.close()


def test_generalized_jsd_is_the_kl_it_names():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 11), torch.randn(5, 11)
    forward = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1),
                       reduction="none", log_target=True).sum(-1).mean()
    reverse = F.kl_div(F.log_softmax(teacher, -1), F.log_softmax(student, -1),
                       reduction="none", log_target=True).sum(-1).mean()
    assert generalized_jsd(student, teacher, beta=0, temperature=1) == pytest.approx(
        forward.item(), rel=1e-5)
    assert generalized_jsd(student, teacher, beta=1, temperature=1) == pytest.approx(
        reverse.item(), rel=1e-5)
    middle = generalized_jsd(student, teacher, beta=0.5, temperature=1).item()
    assert 0 < middle < min(forward.item(), reverse.item())
    assert generalized_jsd(teacher, teacher, beta=0.5, temperature=2).item() == \
        pytest.approx(0, abs=1e-6)


def test_logit_distillation_pulls_the_student_towards_the_teacher(tmp_path):
    """The loss works: the student's divergence from a different teacher falls in training."""
    from harness.models.hardware import Precision
    from harness.models.loading import load_model, resolve_model
    from harness.tasks import resolve_task
    from harness.train.distill import DistillSettings, train_distill
    from harness.train.sft import TrainingConfig

    cpu = torch.device("cpu")
    teacher_dir = make_tiny_model(tmp_path / "teacher", seed=1)
    student_dir = make_tiny_model(tmp_path / "student", seed=2)
    teacher = LMCandidate(*load_model(resolve_model(str(teacher_dir)), cpu, torch.float32))
    student, tokenizer = load_model(resolve_model(str(student_dir)), cpu, torch.float32)
    data = resolve_task("sentiment").load(0).subset(32, 8, 8)
    points = []
    train_distill(student, tokenizer, teacher, data.train, data.validation,
                  TrainingConfig(learning_rate=3e-3, epochs=4, batch_size=8, eval_every=4),
                  DistillSettings(temperature=1.0), seed=0, output_dir=tmp_path / "t",
                  precision=Precision("fp32", cpu), curve_sink=lambda *p: points.append(p))
    validation = [value for _, split, _, value in points if split == "validation"]
    assert len(validation) >= 2 and validation[-1] < 0.8 * validation[0], validation
    example = data.train[0]
    reply = reply_ids(tokenizer, example.messages, example.answer)
    assert tokenizer.decode(reply).startswith(example.answer + "<|im_end|>"), "the reply ends "\
        "its turn"


@pytest.mark.slow  # the runner in a subprocess
def test_the_distillation_suite_compares_student_and_teacher(tiny_model_dir, tmp_path):
    db = tmp_path / "r.db"
    result = run_suites(["--model", str(tiny_model_dir), "--budget=smoke",
                         "--approach=zero-shot,full-ft+distill", "--set",
                         "distill.student_layers=1", f"--results={db}"], tmp_path,
                        suites=["test_distillation.py"],
                        env={"TUNEBENCH_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no teacher" in result.stdout or "skipped" in result.stdout
    rows = {r["name"]: r["value"] for r in query_db(
        db, "SELECT m.name, m.value FROM metrics m JOIN runs r ON r.id = m.run_id "
        "WHERE r.approach = 'full-ft+distill' AND m.suite = 'distillation'")}
    assert 0 <= rows["teacher_agreement"] <= 1 and 0 <= rows["teacher_accuracy"] <= 1
    assert rows["size_ratio"] < 1 and rows["student_layers"] == 1
    assert rows["latency_speedup"] > 0 and rows["teacher_latency_p50_ms"] > 0
    assert rows["teacher_cost_per_1k_requests"] > 0
    assert rows.get("decode_speedup", 1) > 0  # a tiny model's replies may be too short to time
    zero_shot = query_db(db, "SELECT COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                         "WHERE r.approach = 'zero-shot' AND m.suite = 'distillation'")
    assert zero_shot[0][0] == 0


def test_sequence_distillation_labels_unlabeled_prompts_too(tiny_model_dir, tmp_path):
    info = check_approach("distill", tiny_model_dir, tmp_path, overrides=[
        "distill.objective=sequence", "distill.max_new_tokens=4",
        "distill.unlabeled_examples=8"])
    assert info["unlabeled_examples"] == 8
    assert info["train_steps"] == 5, "32 labelled + 8 teacher-labelled prompts, 8 per step"
    with pytest.raises(ValueError, match="needs objective=sequence"):
        session(tmp_path, tiny_model_dir, "distill",
                "distill.unlabeled_examples=8").make_approach("distill")


def test_unlabeled_prompts_are_the_pool_beyond_the_budget_without_answers():
    from harness.tasks import resolve_task

    full = resolve_task("sentiment").load(0)
    cut = full.subset(32, 8, 8)
    assert [e.id for e in cut.unlabeled] == [e.id for e in full.train[32:]]
    assert all(e.answer == "" for e in cut.unlabeled)
    again = full.subset(32, 8, 8)
    again.unlabeled = []
    assert again.fingerprint() == cut.fingerprint(), "the data hash leaves them out"


def test_a_folder_student_is_cached_by_its_weights(tiny_model_dir, tmp_path, cache):
    import shutil

    folder = tmp_path / "student"
    shutil.copytree(tiny_model_dir, folder)
    hits = []
    for rewrite in (False, False, True):
        if rewrite:  # new weights in the same folder: the cached student is stale
            make_tiny_model(folder, seed=5)
        s = session(tmp_path, tiny_model_dir, "distill", f"distill.student={folder}")
        with s.open_run("distill") as run:
            hits.append(run.candidate.info["cache_hit"])
        s.close()
    assert hits == [False, True, False]
