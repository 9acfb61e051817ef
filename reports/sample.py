"""A small, made-up results database for trying the dashboard and for its tests.

Written through ``harness.runner.store.Store`` (the same API the suites use), so it follows the
schema contract: three tasks (``sentiment``: zero-shot, few-shot, lora, qlora, full-ft, a
failed adapters run, a stale few-shot re-run and lora data-efficiency side runs; ``kb-qa``:
zero-shot and rag; ``prefs``: a sweep of ``dpo.beta`` over 3 values and of ``rlhf.beta`` over
2, 2 seeds each, beside a zero-shot base point), with metrics of every suite, per-item
examples, training curves and forgetting flips. Numbers are invented; accuracies and their CIs
are computed from the invented per-item results with ``harness.measure.metrics.accuracy``.

    python -m reports.sample demo.db && streamlit run reports/app.py -- --db demo.db
"""

from __future__ import annotations

import argparse
import hashlib
import random
from pathlib import Path

from harness.measure.catalogue import BUILTIN, Catalogue
from harness.measure.metrics import Estimate, accuracy
from harness.runner.store import RunRecord, Store

ITEMS = 40
LABELS = ("negative", "positive")
# approach: (correct items of 40, train_seconds, p50 latency ms, forgetting fixed/broken)
SENTIMENT = {
    "zero-shot": (20, None, 95.0, None),
    "few-shot": (32, None, 180.0, None),
    "lora": (34, 812.0, 101.0, (2, 4)),
    "qlora": (33, 1290.0, 240.0, (1, 5)),
    "full-ft": (35, 2400.0, 96.0, (1, 9)),
}


PAIRS = 48
PREFS_BASE = 0.42
"""The zero-shot base model's judge reward on the ``prefs`` pairs."""
PREFS_SWEEP = {
    "dpo": {0.01: (0.74, 2.4), 0.1: (0.66, 0.95), 0.5: (0.55, 0.28)},
    "rlhf": {0.05: (0.70, 1.6), 0.2: (0.61, 0.62)},
}
"""approach: {beta: (judge_reward, kl_to_base)}; a higher beta keeps the policy nearer the
base model: lower KL, lower reward (Rafailov et al., 2023, figure 2)."""
SEEDS = (0, 1)


CATALOGUE = Catalogue(BUILTIN)
"""The built-in metrics' directions (what the suites would have recorded)."""
KIND = {"zero-shot": "prompting", "few-shot": "prompting", "rag": "retrieval",
        "lora": "parameter-efficient", "qlora": "parameter-efficient",
        "adapters": "parameter-efficient", "full-ft": "full fine-tuning", "dpo": "preference",
        "rlhf": "preference"}
"""The kind each sample approach declares (as its plugin would)."""


def _record(approach: str, task: str, *, seed: int = 0, code: str = "git:abc1234",
            config: dict | None = None, sweep: dict | None = None) -> RunRecord:
    if config is None:
        config = {"k": 4} if approach == "few-shot" else {}
    digest = hashlib.sha256(f"{approach}{sorted(config.items())}".encode()).hexdigest()
    return RunRecord(
        session="20260101-000000-demo", approach=approach, task=task, model="smollm2-135m",
        seed=seed, budget="smoke", config=config,
        config_hash=digest[:12], data_hash=f"data-{task}-1",
        model_version="smollm2-135m@1", code_version=code, packages={"torch": "2.13.0"},
        device="cpu", kind=KIND[approach], sweep=sweep or {})


def _metric(store: Store, run: int, suite: str, name: str, value: float | Estimate,
            **extra: object) -> None:
    higher = CATALOGUE.require(name).higher_is_better
    if isinstance(value, Estimate):
        store.add_metric(run, suite, name, value.value, low=value.low, high=value.high,
                         n=value.n, higher_is_better=higher, extra=extra)
    else:
        store.add_metric(run, suite, name, value, higher_is_better=higher, extra=extra)


def _hits(right: int, rng: random.Random) -> list[bool]:
    hits = [True] * right + [False] * (ITEMS - right)
    rng.shuffle(hits)
    return hits


def _sentiment_run(store: Store, approach: str, rng: random.Random) -> int:
    right, train_seconds, p50, flips = SENTIMENT[approach]
    run = store.start_run(_record(approach, "sentiment"))
    hits = _hits(right, rng)
    rows = []
    for k, hit in enumerate(hits):
        reference = LABELS[k % 2]
        rows.append({"item_id": f"s{k:03d}", "prompt": f"Review {k}: the film was "
                     f"{'great' if k % 2 else 'dull'}.", "reference": reference,
                     "prediction": reference if hit else LABELS[1 - k % 2], "correct": hit,
                     "latency_ms": p50})
    store.add_examples(run, "accuracy.choice", rows)
    _metric(store, run, "accuracy", "accuracy", accuracy(hits))
    _metric(store, run, "accuracy", "macro_f1", accuracy(hits))
    _metric(store, run, "accuracy", "gen_unmatched", 0.02 if train_seconds else 0.15)
    latency = [p50 * (0.8 + 0.4 * rng.random()) for _ in range(ITEMS)]
    store.add_examples(run, "latency", [
        {"item_id": f"s{k:03d}", "prompt": f"Review {k}", "latency_ms": ms}
        for k, ms in enumerate(latency)])
    for q, factor in ((50, 1.0), (95, 1.4), (99, 1.7)):
        _metric(store, run, "latency", f"latency_p{q}_ms",
                Estimate(p50 * factor, p50 * factor * 0.9, p50 * factor * 1.1, ITEMS))
    _metric(store, run, "latency", "serving_peak_memory_bytes", 6.0e8)
    _metric(store, run, "latency", "train_cost", (train_seconds or 0) / 3600)
    _metric(store, run, "prepare", "prepare_seconds", (train_seconds or 0) + 3.0)
    if train_seconds is not None:
        _metric(store, run, "prepare", "train_seconds", train_seconds)
        params = 2.4e6 if approach != "full-ft" else 1.35e8
        _metric(store, run, "prepare", "trainable_params", params)
        _metric(store, run, "prepare", "artifact_bytes", params * 4)
        speed = train_seconds / 800
        store.add_curve_points(run, [
            (step, split, "loss", 2.5 / (1 + step / (20 * speed))
             + (0.3 * speed if split == "validation" else 0))
            for step in range(0, 101, 10) for split in ("train", "validation")])
        _metric(store, run, "overfitting", "overfit_verdict", 0, verdict="ok",
                rule="validation loss within 10% of its best")
        _forgetting(store, run, flips, rng)
    if approach == "lora":
        _metric(store, run, "latency", "merged_latency_p50_ms",
                Estimate(p50 * 0.92, p50 * 0.85, p50, ITEMS))
    if approach == "qlora":
        _metric(store, run, "latency", "dequantized_latency_p50_ms",
                Estimate(p50 * 0.45, p50 * 0.4, p50 * 0.5, ITEMS))
    store.finish_run(run, "finished")
    return run


def _forgetting(store: Store, run: int, flips: tuple[int, int], rng: random.Random) -> None:
    fixed, broken = flips
    base = _hits(26, rng)
    after = list(base)
    wrong = [k for k, hit in enumerate(base) if not hit]
    right = [k for k, hit in enumerate(base) if hit]
    for k in wrong[:fixed]:
        after[k] = True
    for k in right[:broken]:
        after[k] = False
    delta = accuracy(after).value - accuracy(base).value
    _metric(store, run, "forgetting", "forgetting_delta",
            Estimate(delta, delta - 0.08, delta + 0.06, ITEMS), fixed=fixed,
            broken=broken, p_value=0.3)
    _metric(store, run, "forgetting", "items_fixed", fixed)
    _metric(store, run, "forgetting", "items_broken", broken)
    _metric(store, run, "forgetting", "probe_accuracy", accuracy(after))
    _metric(store, run, "forgetting", "probe_accuracy_base", accuracy(base))
    store.add_examples(run, "forgetting.general", [
        {"item_id": f"g{k:03d}", "prompt": f"General question {k}?", "reference": f"answer {k}",
         "prediction": f"answer {k}" if hit else "something else", "correct": hit,
         "extra": {"base_prediction": f"answer {k}" if was else "no idea", "base_correct": was,
                   "flip": "fixed" if hit and not was else "broken" if was and not hit else ""}}
        for k, (was, hit) in enumerate(zip(base, after, strict=True))])


def _prefs_run(store: Store, approach: str, seed: int, reward: float, kl: float,
               sweep: dict | None = None) -> int:
    config = {key.partition(".")[2]: value for key, value in (sweep or {}).items()}
    run = store.start_run(_record(approach, "prefs", seed=seed, config=config, sweep=sweep))
    win = min(1.0, max(0.0, 0.5 + 1.1 * (reward - PREFS_BASE)))
    _metric(store, run, "preferences", "win_rate_vs_base",
            Estimate(win, max(0.0, win - 0.12), min(1.0, win + 0.12), PAIRS))
    _metric(store, run, "preferences", "judge_reward",
            Estimate(reward, reward - 0.05, reward + 0.05, PAIRS))
    _metric(store, run, "preferences", "kl_to_base",
            Estimate(kl, kl - 0.15 * kl - 0.002, kl + 0.15 * kl + 0.002, PAIRS))
    store.finish_run(run, "finished")
    return run


def _prefs_sweep(store: Store, rng: random.Random) -> dict[str, int]:
    """The ``prefs`` sweep: every beta of ``PREFS_SWEEP`` with each of ``SEEDS``, and the
    zero-shot base point (no sweep; KL 0, win rate 0.5)."""
    ids = {"zero-shot prefs": _prefs_run(store, "zero-shot", 0, PREFS_BASE, 0.0)}
    for approach, points in PREFS_SWEEP.items():
        for beta, (reward, kl) in points.items():
            for seed in SEEDS:
                jitter = rng.uniform(-0.015, 0.015)
                sweep = {f"{approach}.beta": beta}
                run = _prefs_run(store, approach, seed, reward + jitter, kl * (1 + 2 * jitter),
                                 sweep)
                ids[f"{approach}[beta={beta}] seed={seed}"] = run
    return ids


def write_sample(path: str | Path) -> dict[str, int]:
    """Write the sample database at ``path``; returns the run ids by name."""
    rng = random.Random(0)
    store = Store(path)
    ids: dict[str, int] = {}
    old = store.start_run(_record("few-shot", "sentiment", code="git:0ld0001"))
    _metric(store, old, "accuracy", "accuracy", accuracy(_hits(30, rng)))
    store.finish_run(old, "finished")
    ids["few-shot (stale)"] = old
    for approach in SENTIMENT:
        ids[approach] = _sentiment_run(store, approach, rng)
    for size, right in ((8, 22), (16, 29)):
        side = store.start_run(_record("lora", "sentiment", config={"train_examples": size}))
        acc = accuracy(_hits(right, rng))
        _metric(store, side, "accuracy", "primary_accuracy", acc)
        _metric(store, ids["lora"], "overfitting", f"data_efficiency[{size}]", acc,
                train_examples=size, run_id=side)
        store.finish_run(side, "finished")
        ids[f"lora (n={size})"] = side
    failed = store.start_run(_record("adapters", "sentiment"))
    store.finish_run(failed, "failed", "RuntimeError: out of memory while training")
    ids["adapters"] = failed
    for approach, right in (("zero-shot", 12), ("rag", 31)):
        run = store.start_run(_record(approach, "kb-qa"))
        _metric(store, run, "accuracy", "gen_accuracy", accuracy(_hits(right, rng)))
        _metric(store, run, "knowledge_update", "new_facts_after",
                0.9 if approach == "rag" else 0.05)
        if approach == "rag":
            _metric(store, run, "retrieval", "recall_at_k", 0.88, k=3)
            _metric(store, run, "latency", "retrieval_ms", Estimate(12.0, 10.0, 14.0, 40))
            _metric(store, run, "latency", "model_ms", Estimate(210.0, 190.0, 230.0, 40))
        store.finish_run(run, "finished")
        ids[f"{approach} kb-qa"] = run
    ids.update(_prefs_sweep(store, random.Random(1)))
    store.close()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="database file to write (must not exist)")
    args = parser.parse_args()
    if args.path.exists():
        parser.error(f"{args.path} exists; choose a new file")
    write_sample(args.path)
    print(f"wrote {args.path}; open it with: streamlit run reports/app.py -- --db {args.path}")


if __name__ == "__main__":
    main()
