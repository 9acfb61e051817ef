"""The forgetting, overfitting and latency suites end to end on the tiny model, in a
subprocess, as a user runs them; and several seeds with the tied-groups summary."""

import json
import math

import pytest

from tests.conftest import built_once, run_once, run_suites
from tests.conftest import query_db as query

pytestmark = pytest.mark.slow  # the suites end to end in subprocesses

MC_DOCS = [
    {"question": "Which is a colour?", "choices": ["red", "table", "run"], "label": 0},
    {"question": "Which is a number?", "choices": ["blue", "seven", "walk"], "label": 1},
    {"question": "Which is an animal?", "choices": ["stone", "river", "horse"], "label": 2},
    {"question": "Which is a fruit?", "choices": ["apple", "chair", "cloud"], "label": 0},
]


def write_lmeval_task(folder):
    """A multiple-choice lm-eval task over a local JSONL (no hub access)."""
    data = folder / "probe.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in MC_DOCS))
    yaml = folder / "tiny_probe.yaml"
    yaml.write_text(
        "task: tiny_probe\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "doc_to_choice: \"{{choices}}\"\n"
        "doc_to_target: label\n"
        "metric_list:\n  - metric: acc\n"
    )
    return yaml


@pytest.fixture(scope="session")
def measured(tiny_model_dir, tmp_path_factory):
    yaml = built_once(tmp_path_factory, "lmeval-probe", write_lmeval_task) / "tiny_probe.yaml"
    folder, result = run_once(tmp_path_factory, "measure", [
        "--approach=zero-shot,few-shot,lora,qlora", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "--data-sizes=16", f"--forgetting-tasks={yaml}", "-rs",
    ], env=lambda folder: {"TUNEBENCH_CACHE": str(folder / "cache"), "HF_DATASETS_OFFLINE": "1"},
        timeout=900, suites=["test_forgetting.py", "test_overfitting.py", "test_latency.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    db = folder / "r.db"

    def metrics(approach, suite):
        rows = query(db, "SELECT m.* FROM metrics m JOIN runs r ON r.id = m.run_id WHERE "
                     "r.approach = ? AND m.suite = ? AND r.config_json NOT LIKE "
                     "'%train_examples%'", approach, suite)
        return {row["name"]: row for row in rows}

    return db, metrics, result


def test_forgetting_is_zero_for_the_base_model_itself(measured):
    _, metrics, _ = measured
    zero = metrics("zero-shot", "forgetting")
    assert zero["forgetting_delta"]["value"] == 0.0
    assert zero["items_fixed"]["value"] == zero["items_broken"]["value"] == 0
    assert zero["mcnemar_p"]["value"] == 1.0
    assert zero["perplexity"]["value"] == pytest.approx(zero["perplexity_base"]["value"])
    assert zero["forgetting_delta[tiny_probe]"]["value"] == 0.0
    # raw mode (plain text, no chat template) measures the same nothing
    assert zero["forgetting_delta_raw"]["value"] == 0.0
    assert zero["items_fixed_raw"]["value"] == zero["items_broken_raw"]["value"] == 0
    assert zero["forgetting_delta_raw[tiny_probe]"]["value"] == 0.0
    assert zero["nll_per_token_delta"]["value"] == 0.0
    assert "interference_delta" not in zero  # it rewrites no prompt


def test_prompt_interference_is_named_apart_from_forgetting(measured):
    db, metrics, _ = measured
    few = metrics("few-shot", "forgetting")
    # its weights are the base's: nothing forgotten, whatever its demonstrations do
    assert few["forgetting_delta"]["value"] == 0.0 and few["forgetting_delta_raw"]["value"] == 0
    interference = few["interference_delta"]
    extra = json.loads(interference["extra_json"])
    assert interference["value"] == pytest.approx(
        few["probe_accuracy_prompted"]["value"] - few["probe_accuracy_base"]["value"])
    assert extra["fixed"] == few["items_fixed_prompted"]["value"]
    assert "interference_delta[tiny_probe]" in few and "acc_prompted[tiny_probe]" in few
    parts = {row["suite"] for row in query(
        db, "SELECT DISTINCT e.suite FROM examples e JOIN runs r ON r.id = e.run_id "
        "WHERE r.approach = 'few-shot'")}
    assert {"forgetting.general", "forgetting.general.prompted", "forgetting.general.raw"} <= parts


def test_lmeval_standard_errors_become_the_stored_intervals(measured):
    _, metrics, _ = measured
    for name in ("acc[tiny_probe]", "acc_raw[tiny_probe]"):
        row = metrics("lora", "forgetting")[name]
        stderr = json.loads(row["extra_json"])["stderr"]
        assert stderr > 0
        assert row["ci_high"] - row["value"] == pytest.approx(1.959964 * stderr, rel=1e-4)
        assert row["value"] - row["ci_low"] == pytest.approx(1.959964 * stderr, rel=1e-4)


def test_forgetting_of_a_trained_candidate_is_paired_and_stored_per_item(measured):
    db, metrics, _ = measured
    lora = metrics("lora", "forgetting")
    delta = lora["forgetting_delta"]
    assert delta["ci_low"] <= delta["value"] <= delta["ci_high"]
    extra = json.loads(delta["extra_json"])
    assert extra["fixed"] == lora["items_fixed"]["value"]
    assert extra["broken"] == lora["items_broken"]["value"]
    after, before = lora["probe_accuracy"]["value"], lora["probe_accuracy_base"]["value"]
    assert delta["value"] == pytest.approx(after - before)
    assert any(name.startswith("forgetting_delta[") and "tiny" not in name for name in lora)
    items = query(db, "SELECT e.correct, e.extra_json FROM examples e JOIN runs r ON "
                  "r.id = e.run_id WHERE r.approach = 'lora' AND e.suite = "
                  "'forgetting.general'")
    assert len(items) == 24  # the smoke budget's probes
    flips = [json.loads(i["extra_json"])["flip"] for i in items]
    assert flips.count("fixed") == extra["fixed"] and flips.count("broken") == extra["broken"]
    assert math.isfinite(lora["perplexity"]["value"])
    raw = lora["forgetting_delta_raw"]
    assert raw["value"] == pytest.approx(lora["probe_accuracy_raw"]["value"]
                                         - lora["probe_accuracy_base_raw"]["value"])
    assert raw["ci_low"] <= raw["value"] <= raw["ci_high"]


def test_overfitting_verdicts_and_data_efficiency(measured):
    db, metrics, result = measured
    zero, lora = metrics("zero-shot", "overfitting"), metrics("lora", "overfitting")
    assert json.loads(zero["overfit_verdict"]["extra_json"])["verdict"] == "no-training"
    reading = json.loads(lora["overfit_verdict"]["extra_json"])
    assert reading["verdict"] in {"ok", "overfit", "underfit", "too-short"}
    assert "overfit: validation loss rose" in reading["rule"]
    assert lora["best_step"]["value"] <= lora["final_step"]["value"]
    gap = lora["train_eval_gap"]
    assert gap["value"] == pytest.approx(
        lora["train_accuracy"]["value"] - lora["eval_accuracy_same_n"]["value"])
    point = lora["data_efficiency[16]"]
    sized_run = json.loads(point["extra_json"])["run_id"]
    config = json.loads(query(db, "SELECT config_json FROM runs WHERE id = ?",
                              sized_run)[0]["config_json"])
    assert config["train_examples"] == 16
    assert "data_efficiency[16]" not in metrics("zero-shot", "overfitting")
    assert "zero-shot trains nothing" in result.stdout


def test_latency_percentiles_variants_and_cost(measured):
    _, metrics, _ = measured
    decoded = 0
    for approach in ("zero-shot", "lora", "qlora"):
        latency = metrics(approach, "latency")
        p50, p95, p99 = (latency[f"latency_p{q}_ms"]["value"] for q in (50, 95, 99))
        assert 0 < p50 <= p95 <= p99
        assert latency["ttft_ms"]["value"] > 0
        # decode time is (total - first token) / (tokens - 1) on a fixed number of tokens
        # (end-of-sequence ignored), so every LM candidate has it, whatever it replies; on
        # the tiny model a call takes milliseconds, so under load the one smoke figure can
        # fall into the noise: positive required for at least one candidate
        decode = latency["decode_ms_per_token"]
        assert math.isfinite(decode["value"])
        assert json.loads(decode["extra_json"])["fixed_length"] is True
        assert json.loads(decode["extra_json"])["decode_tokens"] == 16
        decoded += decode["value"] > 0
        assert latency["serving_peak_memory_bytes"]["value"] > 0
        assert latency["cost_per_1k_requests"]["value"] > 0
    assert decoded >= 1
    assert not any(n.startswith("merged_") for n in metrics("zero-shot", "latency"))
    lora, qlora = metrics("lora", "latency"), metrics("qlora", "latency")
    assert "merged_latency_p50_ms" in lora and "merged_decode_ms_per_token" in lora
    assert "merged_latency_p50_ms" in qlora and "dequantized_latency_p50_ms" in qlora
    # each variant timed interleaved with the candidate: paired ratios with their CIs (the
    # decode ratio needs both sides' one smoke figure above the noise: at least once)
    ratios = 0
    for name, recorded in (("merged_", lora), ("merged_", qlora), ("dequantized_", qlora)):
        for ratio in ("latency_ratio", "decode_ratio"):
            row = recorded.get(name + ratio)
            if row is None and ratio == "decode_ratio":
                continue
            assert row["ci_low"] <= row["value"] <= row["ci_high"], (name, ratio, dict(row))
            assert row["higher_is_better"] == 0 and row["value"] > 0
            ratios += 1
        assert recorded[name + "latency_ratio"]["n"] == 3  # the smoke budget's 3 requests
    assert ratios >= 4
    assert lora["train_cost"]["value"] > 0


def test_several_seeds_summarise_mean_spread_and_ties(tiny_model_dir, tmp_path):
    result = run_suites([
        "--approach=zero-shot,few-shot", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "--seeds=0,1", "-k", "choice", "-v",
    ], tmp_path, suites=["test_accuracy.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_choice_accuracy[zero-shot-seed1]" in result.stdout
    runs = query(tmp_path / "r.db", "SELECT approach, seed FROM runs ORDER BY approach, seed")
    assert [(r["approach"], r["seed"]) for r in runs] == [
        ("few-shot", 0), ("few-shot", 1), ("zero-shot", 0), ("zero-shot", 1)]
    assert "over seeds: mean +- sd" in result.stdout
    summary = result.stdout[result.stdout.index("over seeds"):]
    assert "(n=2)" in summary and "tied" in summary
    # the headline's interval over seeds comes from both seeds' items (seeds, then items)
    assert "on accuracy of few-shot, zero-shot: two-stage bootstrap, seeds then items" in summary


def test_bad_seed_list_is_a_usage_error(tmp_path):
    result = run_suites(["--seeds=0,one"], tmp_path)
    assert result.returncode == 4
    assert "--seeds=0,one: give comma-separated whole numbers" in result.stderr


def test_probe_modes_and_sentence_answers_are_options(tiny_model_dir, tmp_path):
    result = run_suites([
        "--approach=zero-shot", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "--forgetting-mode=raw", "--probe-answers=sentence",
    ], tmp_path, suites=["test_forgetting.py"],
        env={"TUNEBENCH_CACHE": str(tmp_path / "cache")})  # the base scores it keeps: not in ~
    assert result.returncode == 0, result.stdout + result.stderr
    names = {row["name"] for row in query(tmp_path / "r.db", "SELECT name FROM metrics")}
    assert "forgetting_delta_raw" in names and "forgetting_delta" not in names
    references = {row["reference"] for row in query(
        tmp_path / "r.db", "SELECT reference FROM examples WHERE suite = ?",
        "forgetting.general.raw")}
    assert references and all(r.startswith("The answer is ") for r in references)
    extra = query(tmp_path / "r.db", "SELECT extra_json FROM metrics WHERE name = ?",
                  "forgetting_delta_raw")[0]["extra_json"]
    assert json.loads(extra)["answers"] == "sentence"


def test_the_base_models_scores_are_kept_for_the_next_session(measured):
    """The forgetting suite keeps the base model's probe scores (chat, raw) and its text
    log-likelihoods in the cache (harness/measure/base_scores.py): what the candidates were
    compared with."""
    db, _, _ = measured
    kept = [json.loads(path.read_text())
            for path in (db.parent / "cache" / "base-scores").glob("*.json")]
    assert sorted(k["key"].get("mode", "text") for k in kept) == ["chat", "raw", "text"]
    chat = next(k for k in kept if k["key"].get("mode") == "chat")
    rows = query(db, "SELECT e.item_id, e.extra_json FROM examples e JOIN runs r ON "
                     "r.id = e.run_id WHERE r.approach = 'lora' AND e.suite = "
                     "'forgetting.general' AND r.config_json NOT LIKE '%train_examples%'")
    assert {r["item_id"]: r["correct"] for r in chat["value"]} == {
        r["item_id"]: json.loads(r["extra_json"])["base_correct"] for r in rows}
