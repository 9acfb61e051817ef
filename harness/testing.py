"""Helpers for testing tunebench and its plugins without the real model.

``check_approach`` is the contract test every approach passes (tests/test_contract.py runs
it over every registered approach; an external plugin runs it in its own tests).

``make_tiny_model(folder)`` writes a randomly initialised two-layer Llama with a small
byte-level BPE tokenizer and a ChatML chat template: it loads through the same
``--model PATH`` code path as any checkpoint, in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CORPUS = [
    "Classify the sentiment of this review as positive or negative. Answer with one word.",
    "The food was great, the service was slow, the battery died, I loved it, never again.",
    "positive negative review hotel app screen room staff waiter price quality",
]


def make_tiny_model(folder: str | Path, *, seed: int = 0, hidden_size: int = 64,
                    reply_end: float = 5.0) -> Path:
    """Write a tiny causal LM + tokenizer to ``folder`` and return it.

    Its end-of-turn token's embedding (tied to the output layer) is a random direction of
    norm ``reply_end``: the larger it is, the sooner its logit wins, so greedy replies end
    after a few tokens as a chat model's do (5.0: 6 tokens on average on sentiment, 11 on
    kb-qa and addresses), where a random model's run to ``max_new_tokens`` (50 to 94).
    ``reply_end=0`` leaves the token's random initialisation."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>", chat_template=CHATML_TEMPLATE,
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, initializer_range=0.2,
    )
    model = LlamaForCausalLM(config)
    if reply_end:
        direction = torch.randn(hidden_size)
        with torch.no_grad():
            model.get_input_embeddings().weight[tokenizer.eos_token_id] = (
                reply_end * direction / direction.norm())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def check_approach(
    name: str, model_dir: str | Path, workdir: str | Path, overrides: Sequence[str] = (),
    task: str = "sentiment",
) -> dict[str, Any]:
    """The contract every approach must meet, checked on a (tiny) model at the smoke budget.

    Prepares the approach through the harness exactly as the runner does, then checks that the
    candidate answers (``generate`` and ``score_choices`` with the right shapes, finite
    scores), that the harness recorded its cost, and, for trained approaches, that training
    left curves and artifacts and that a second session reuses the cached candidate with the
    same scores. ``task`` is the task to prepare on (one with documents for retrieval
    approaches, e.g. ``kb-qa``). Returns the candidate's ``info``. External plugins call it
    in their tests::

        from harness.testing import check_approach, make_tiny_model

        def test_contract(tmp_path):
            check_approach("my-method", make_tiny_model(tmp_path / "m"), tmp_path)
    """
    import math
    import os

    from harness.runner.session import ExperimentSession, SessionOptions
    from harness.train.trained import TrainedApproach

    workdir = Path(workdir)
    previous_cache = os.environ.get("TUNEBENCH_CACHE")
    os.environ["TUNEBENCH_CACHE"] = str(workdir / "cache")
    try:
        sessions, infos, all_scores = [], [], []
        for attempt in range(2):
            session = ExperimentSession(SessionOptions(
                approaches=[name], task=task, model=str(model_dir), budget="smoke",
                results=workdir / "results.db", overrides=list(overrides),
                session=f"contract-{attempt}",
            ))
            sessions.append(session)
            eval_items = session.task_data().eval[:3]
            prompts = [e.messages for e in eval_items]
            choices = [e.choices or (e.answer,) for e in eval_items]
            with session.open_run(name) as run:
                candidate = run.candidate
                texts = candidate.generate(prompts, max_new_tokens=4)
                assert len(texts) == 3 and all(isinstance(t, str) for t in texts), texts
                scores = candidate.score_choices(prompts, choices)
                assert [len(row) for row in scores] == [len(c) for c in choices], scores
                assert all(math.isfinite(s) and s <= 0 for row in scores for s in row), scores
                infos.append(dict(candidate.info))
                all_scores.append(scores)
                run_id = run.id
            store = session.store
            status = store.query("SELECT status FROM runs WHERE id = ?", (run_id,))[0][0]
            assert status == "finished", status
            cost = {r[0] for r in store.query(
                "SELECT name FROM metrics WHERE run_id = ? AND suite = 'prepare'", (run_id,))}
            assert {"prepare_seconds", "peak_memory_bytes"} <= cost, cost
            approach = session.make_approach(name)
            parts = getattr(approach, "parts", [approach])  # a composition's parts
            trained = any(isinstance(part, TrainedApproach) for part in parts)
            if not trained:
                break
            curves = store.query("SELECT DISTINCT split FROM curves WHERE run_id = ?", (run_id,))
            assert {"train", "validation"} <= {r[0] for r in curves}, curves
            assert {"trainable_params", "artifact_bytes", "train_seconds"} <= cost, cost
            assert infos[-1]["trainable_params"] > 0
            assert Path(infos[-1]["artifact_dir"]).is_dir()
        if len(infos) == 2:
            assert infos[0]["cache_hit"] is False and infos[1]["cache_hit"] is True, infos
            assert infos[1]["trainable_params"] == infos[0]["trainable_params"]
            for first, again in zip(all_scores[0], all_scores[1], strict=True):
                assert all(abs(a - b) < 1e-4 for a, b in zip(first, again, strict=True)), (
                    "the cached candidate scores differently from the trained one")
        return infos[0]
    finally:
        for session in sessions:
            session.close()
        if previous_cache is None:
            os.environ.pop("TUNEBENCH_CACHE", None)
        else:
            os.environ["TUNEBENCH_CACHE"] = previous_cache
