"""Shared fine-tuning: loss masking, reproducibility, curves, early stopping, caching, QLoRA."""

import copy
import json
import sqlite3
from pathlib import Path

import pytest
import torch

from harness.core.approach import BUDGETS, RunContext
from harness.models.hardware import Precision
from harness.models.loading import load_model, resolve_model
from harness.runner.session import ExperimentSession, SessionOptions
from harness.train.callbacks import PatienceStopping
from harness.train.houlsby import adapter_parameter_count
from harness.train.sft import TrainingConfig, train_sft

pytestmark = pytest.mark.slow  # every test trains a model (seconds each): not in make test-fast


@pytest.fixture
def session(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path / "cache"))

    def make(approach, *overrides, retrain=False, seed=0):
        return ExperimentSession(SessionOptions(
            approaches=[approach], model=str(tiny_model_dir), budget="smoke",
            results=tmp_path / "r.db", overrides=list(overrides), retrain=retrain, seed=seed,
        ))

    return make


def test_prompts_longer_than_max_length_are_a_clear_error(tiny_lm, tmp_path):
    data = ExperimentSession(SessionOptions(approaches=["lora"], budget="smoke")).task_data()
    model, tokenizer = tiny_lm
    # a private copy: building the trainer changes the model it is given (the shared one
    # then generated differently in later tests on the same worker)
    with pytest.raises(ValueError, match=r"all 4 training examples were dropped.*max_length"):
        train_sft(copy.deepcopy(model), tokenizer, data.train[:4], [],
                  TrainingConfig(max_length=8), seed=0,
                  output_dir=tmp_path, precision=Precision("fp32", torch.device("cpu")),
                  curve_sink=lambda *p: None)


def test_loss_is_on_the_reply_only(tiny_model_dir, tmp_path):
    model, tokenizer = load_model(resolve_model(str(tiny_model_dir)), torch.device("cpu"),
                                  torch.float32)
    data = ExperimentSession(SessionOptions(approaches=["lora"], budget="smoke")).task_data()
    seen = {}

    def inspect(trainer):
        seen["row"] = trainer.train_dataset[0]
        raise StopIteration  # enough: we only look at the prepared data

    with pytest.raises(StopIteration):
        train_sft(model, tokenizer, data.train[:4], [], TrainingConfig(), seed=0,
                  output_dir=tmp_path, precision=Precision("fp32", torch.device("cpu")),
                  curve_sink=lambda *p: None, inspect_trainer=inspect)
    row = seen["row"]
    mask = [label != -100 for label in row["labels"]]
    trained_text = tokenizer.decode([t for t, m in zip(row["input_ids"], mask, strict=True) if m])
    assert trained_text.strip().startswith(data.train[0].answer)
    assert "Review:" not in trained_text  # the prompt contributes no loss
    assert sum(mask) < len(mask) / 4


def test_same_seed_same_candidate_and_other_seed_differs(session):
    def adapter_and_curve(seed):
        s = session("lora", retrain=True, seed=seed)
        with s.open_run("lora") as run:
            weights = {k: v.clone() for k, v in run.candidate.model.state_dict().items()
                       if "lora_" in k}
            curve = s.store.query("SELECT step, split, value FROM curves WHERE run_id = ?",
                                  (run.id,))
        return weights, [tuple(r) for r in curve]

    first, again, other = adapter_and_curve(0), adapter_and_curve(0), adapter_and_curve(1)
    assert first[1] == again[1] and first[1]
    assert all(torch.equal(first[0][k], again[0][k]) for k in first[0])
    assert any(not torch.equal(first[0][k], other[0][k]) for k in first[0])


def test_curves_metrics_and_artifacts_reach_the_store(session, tmp_path):
    s = session("lora", "lora.eval_every=1")
    with s.open_run("lora") as run:
        info = run.candidate.info
    db = sqlite3.connect(tmp_path / "r.db")
    splits = db.execute("SELECT split, count(*) FROM curves WHERE run_id = ? GROUP BY split",
                        (run.id,)).fetchall()
    assert dict(splits)["validation"] == info["train_steps"] == 4  # smoke: 32 items / 8
    metrics = dict(db.execute("SELECT name, value FROM metrics WHERE run_id = ? "
                              "AND suite = 'prepare'", (run.id,)).fetchall())
    assert metrics["trainable_params"] == info["trainable_params"] > 0
    assert metrics["artifact_bytes"] > 0 and metrics["train_tokens_per_second"] > 0
    files = sorted(p.name for p in (tmp_path / "runs" / f"{run.id}-lora" / "candidate").iterdir())
    assert files == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                     "candidate.json"]


def test_a_candidate_trained_here_runs_as_a_reloaded_one(session):
    """No accelerate wrapper (autocast, outputs cast to fp32) left on forward, the KV cache on,
    and the same scores as the candidate reloaded from the cache."""
    prompts = [[{"role": "user", "content": "Review: great food. Sentiment?"}]]
    scores = []
    for retrain in (True, False):
        s = session("lora", retrain=retrain)
        with s.open_run("lora") as run:
            model = run.candidate.model
            assert run.candidate.info.get("cache_hit", False) is not retrain
            assert "_original_forward" not in model.__dict__ and model.config.use_cache
            scores.append(run.candidate.score_choices(prompts, [["positive", "negative"]]))
        s.close()
    assert scores[0] == scores[1]


def test_retrain_ignores_the_cache(session):
    for retrain, expected in ((False, False), (False, True), (True, False)):
        with session("lora", retrain=retrain).open_run("lora") as run:
            assert run.candidate.info["cache_hit"] is expected


def test_a_config_change_misses_the_cache(session):
    with session("lora").open_run("lora") as run:
        assert run.candidate.info["cache_hit"] is False
    with session("lora", "lora.r=4").open_run("lora") as run:
        assert run.candidate.info["cache_hit"] is False


def test_patience_stops_after_n_evaluations_without_improvement():
    class Control:
        should_training_stop = False

    class State:
        global_step = 0

    rule, control, state = PatienceStopping(2), Control(), State()
    for step, loss in enumerate([1.0, 0.8, 0.9, 0.85, 0.7], start=1):
        state.global_step = step
        rule.on_evaluate(None, state, control, metrics={"eval_loss": loss})
        if control.should_training_stop:
            break
    assert rule.stopped_at == 4  # 0.9 and 0.85 did not beat 0.8


def test_early_stopping_ends_training_early(session):
    s = session("lora", "lora.eval_every=1", "lora.early_stopping_patience=1",
                "lora.learning_rate=0", "lora.epochs=3")
    with s.open_run("lora") as run:
        info = run.candidate.info
    assert info["stopped_early_at_step"] == 2  # lr 0: step 2 cannot improve on step 1
    assert info["train_steps"] == 2


def test_qlora_trains_adapters_on_a_4bit_nf4_double_quantized_base(session):
    from bitsandbytes.nn import Linear4bit
    from safetensors.torch import load_file

    with session("qlora").open_run("qlora") as run:
        model, artifacts = run.candidate.model, Path(run.candidate.info["artifact_dir"])
    quantized = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert quantized
    state = quantized[0].weight.quant_state
    assert state.quant_type == "nf4" and state.nested  # double quantization
    trained = load_file(artifacts / "adapter_model.safetensors")  # fp32 master weights
    assert trained and {t.dtype for t in trained.values()} == {torch.float32}
    assert all("lora_" in name for name in trained)


def test_adapters_trainable_count_matches_the_houlsby_formula(session, tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    d, layers = config["hidden_size"], config["num_hidden_layers"]
    with session("adapters", "adapters.bottleneck=8").open_run("adapters") as run:
        info = run.candidate.info
    assert info["trainable_params"] == adapter_parameter_count([d] * (2 * layers), 8)


def test_full_finetuning_updates_every_weight_and_saves_the_whole_model(session):
    with session("full-ft").open_run("full-ft") as run:
        info = run.candidate.info
    assert info["trainable_params"] == info["total_params"]
    assert info["artifact_bytes"] > 4 * info["total_params"] * 0.9  # fp32 weights on disk


def test_peft_config_errors_name_the_file(session, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"r": 4}')
    s = session("peft", f"peft.config={broken}")
    with pytest.raises(ValueError, match=r"broken\.json: field 'peft_type' is missing"), \
            s.open_run("peft"):
        pass
    s = session("peft", f"peft.config={tmp_path / 'missing.json'}")
    with pytest.raises(ValueError, match=r"ia3\.json, loha\.json, prefix_tuning\.json"), \
            s.open_run("peft"):
        pass


def test_budgets_nest():
    smoke, quick = BUDGETS["smoke"], BUDGETS["quick"]
    assert smoke.train_examples < quick.train_examples
    assert BUDGETS["full"].train_examples is None
    assert RunContext.__dataclass_fields__["retrain"].default is False


def test_validation_curve_ends_at_the_last_step_without_duplicates(session, tmp_path):
    with session("lora", "lora.eval_every=3").open_run("lora") as run:
        info = run.candidate.info
    db = sqlite3.connect(tmp_path / "r.db")
    steps = [r[0] for r in db.execute(
        "SELECT step FROM curves WHERE run_id = ? AND split = 'validation' ORDER BY step",
        (run.id,))]
    assert steps == [3, 4]  # every 3 steps, plus the final one
    assert 0 < info["validation_seconds"] < info["train_seconds"]


def test_trainers_step_with_fused_adamw_in_the_sessions_precision(tmp_path):
    """Every trainer's arguments ask for the fused AdamW kernel (one pass over all
    parameters; the per-tensor loop was a quarter of a full fine-tuning step on the CPU)
    and autocast in the session's precision, and transformers honours both on this device."""
    from transformers import Trainer, TrainingArguments

    from harness.models.hardware import Precision
    from harness.train.sft import TrainingConfig, common_arguments

    arguments = common_arguments(TrainingConfig(), 64, seed=0, output_dir=tmp_path,
                                 precision=Precision("bf16", torch.device("cpu")),
                                 validate=False)
    assert arguments["bf16"] and not arguments["fp16"]
    model = torch.nn.Linear(4, 4)
    trainer = Trainer(model=model, args=TrainingArguments(**arguments))
    trainer.create_optimizer()
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.defaults["fused"] is True
