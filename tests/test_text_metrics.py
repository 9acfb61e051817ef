"""Graded scores of free replies (harness.measure.text_metrics), paired tests on them
(harness.measure.compare), and the headline metric a user chooses (task.metric, task.yaml)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from harness.core import plugins
from harness.core.overrides import OverrideError, parse_overrides
from harness.data.errors import DataError
from harness.data.task_yaml import folder_task_options
from harness.measure.compare import compare_by_id, paired_comparison, randomisation_p_value
from harness.measure.text_metrics import (
    add_open_scores,
    bleu,
    chrf,
    overlap_scores,
    reference_logprobs,
    rouge_l,
    semantic_similarities,
)
from harness.models.lm_candidate import LMCandidate, chat_prompt_ids
from harness.runner.session import ExperimentSession, SessionOptions
from harness.tasks import resolve_task
from harness.tasks.base import Example
from reports import data, decision, example_data
from reports.export import leaderboard_cells
from tests.conftest import query_db, run_suites

REPLY, REFERENCE = "The cat sleeps on the mat.", "The cat is sleeping on the mat."


def test_overlap_scores_match_hand_computed_values():
    scores = overlap_scores(REPLY, REFERENCE)
    assert scores["exact_match"] == 0.0
    # SQuAD normalisation drops "the": reply cat sleeps on mat, reference cat is sleeping on
    # mat; 3 shared tokens: precision 3/4, recall 3/5, F1 = 2/3.
    assert scores["f1"] == pytest.approx(2 / 3)
    # Longest common word subsequence "the cat on the mat" (5 words) of 6 and 7 words:
    # P = 5/6, R = 5/7, F = 2PR / (P + R) = 10/13.
    assert rouge_l(REPLY, REFERENCE) == pytest.approx(10 / 13)
    # chrF on "ab" vs "ac": character 1-grams P = R = 1/2, 2-grams 0; averaged over the two
    # orders that exist, P = R = 1/4, so F(beta=2) = 1/4.
    assert chrf("ab", "ac") == pytest.approx(0.25)
    # BLEU of "the cat sat on the mat" vs "the cat sat on a mat" (same length, no brevity
    # penalty): clipped n-gram precisions 5/6, 3/5, 2/4 and 1/3; BLEU is their geometric mean.
    expected = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert bleu("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(expected)
    for text in (REPLY, "Springfield, IL 62704"):
        assert overlap_scores(text, text) == pytest.approx(
            {"exact_match": 1.0, "f1": 1.0, "rouge_l": 1.0, "chrf": 1.0, "bleu": 1.0})
    assert overlap_scores("zzz", "abc") == {"exact_match": 0.0, "f1": 0.0, "rouge_l": 0.0,
                                            "chrf": 0.0, "bleu": 0.0}


def test_semantic_similarity_ranks_a_paraphrase_above_an_unrelated_reply():
    same, paraphrase, unrelated = semantic_similarities(
        [REFERENCE, REPLY, "The invoice is overdue by three weeks."], [REFERENCE] * 3)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert paraphrase > 0.8 > 0.3 > unrelated


def _messages(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text},)


def test_reference_likelihood_is_the_mean_log_probability_per_reference_token(tiny_lm):
    model, tokenizer = tiny_lm
    candidate = LMCandidate(model, tokenizer)
    items = [Example("a", _messages("Fix: he go home"), "He goes home."),
             Example("b", _messages("Fix: they was late"), "They were late, again.")]
    got = reference_logprobs(candidate, items)
    for example, value in zip(items, got, strict=True):
        prompt = chat_prompt_ids(tokenizer, example.messages)
        answer = tokenizer(example.answer, add_special_tokens=False).input_ids
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + answer])).logits[0].float()
        logprobs = logits.log_softmax(-1)
        total = sum(logprobs[len(prompt) - 1 + k, token].item() for k, token in enumerate(answer))
        assert value == pytest.approx(total / len(answer), abs=1e-4)
    rows = [{"item_id": e.id, "reference": e.answer, "extra": {"generated": e.answer}}
            for e in items]
    add_open_scores(rows, items, candidate)
    assert [r["extra"]["ref_logprob"] for r in rows] == pytest.approx(got)
    assert all(r["extra"]["chrf"] == pytest.approx(1.0) for r in rows)
    rows[0]["extra"]["f1"] = 0.5  # a task's own score is kept
    add_open_scores(rows, items, candidate)
    assert rows[0]["extra"]["f1"] == 0.5


def test_graded_scores_compare_paired_by_randomisation_and_right_wrong_by_mcnemar():
    rng = [((i * 37) % 100) / 100 for i in range(200)]
    better = [min(1.0, v + 0.05) for v in rng]
    found = paired_comparison(rng, better)
    assert found.graded and found.test == "paired randomisation test"
    assert found.p_value < 0.001 and found.delta.low > 0
    assert found.fixed + found.broken + found.both_right == 200 and found.broken == 0
    same = paired_comparison(rng, list(rng))
    assert same.p_value == 1.0 and same.delta.value == 0
    noise = [v + (0.01 if i % 2 else -0.01) for i, v in enumerate(rng)]
    assert randomisation_p_value([b - a for a, b in zip(rng, noise, strict=True)]) > 0.5
    binary = paired_comparison([True, False, True, True], [1.0, 1.0, 0.0, 1.0])
    assert not binary.graded and (binary.fixed, binary.broken) == (1, 1)
    assert binary.test == "McNemar's exact test" and binary.p_value == 1.0
    by_id = compare_by_id({"x": 0.2, "y": 0.4}, {"y": 0.9, "x": 0.3, "z": 1.0})
    assert by_id.n == 2 and by_id.delta.value == pytest.approx(0.3)


def _free_text(path, n=48, instruction="Correct the grammar."):
    subjects = ("The cat", "My brother", "The teacher", "Our neighbour", "A student", "The dog")
    verbs = (("sleep", "sleeps"), ("read", "reads"), ("walk", "walks"), ("cook", "cooks"))
    places = ("at home", "in the park")
    times = ("every day", "on Mondays", "at night", "in the morning", "after lunch")
    lines = []
    for i in range(n):
        s, (base, third), p = (subjects[i % 6], verbs[i // 6 % 4], places[i // 24 % 2])
        t = times[i // 48 % 5]
        lines.append(json.dumps({"instruction": instruction, "input": f"{s} {base} {p} {t}.",
                                 "output": f"{s} {third} {p} {t}."}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_headline_metric_defaults_and_choices(tmp_path):
    free = str(_free_text(tmp_path / "gram.jsonl"))
    registry = plugins.approaches()
    assert resolve_task(free).headline_metric(resolve_task(free).load(0)) == "f1"
    sentiment = resolve_task("sentiment")
    assert sentiment.headline_metric(sentiment.load(0)) == "accuracy"
    kbqa = resolve_task("kb-qa")
    assert kbqa.headline_metric(kbqa.load(0)) == "gen_accuracy"  # it scores replies itself
    parsed = parse_overrides(["task.metric=chrf"], registry, resolve_task(free))["task"]
    assert resolve_task(free, parsed).headline_metric(resolve_task(free).load(0)) == "chrf"
    chosen = resolve_task("kb-qa", {"metric": "rouge_l"})  # built-in tasks take task.metric
    assert chosen.headline_metric(kbqa.load(0)) == "rouge_l"
    with pytest.raises(OverrideError, match=r"'chrff' is not a per-item metric \(did you mean "
                                            r"'chrf'\?\)"):
        resolve_task(free, {"metric": "chrff"})
    with pytest.raises(OverrideError, match=r"takes only task\.metric"):
        parse_overrides(["task.labels=a,b"], registry, sentiment)
    with pytest.raises(ValueError, match="scored as classification; its headline can be "
                                         "accuracy or gen_accuracy"):
        ExperimentSession(SessionOptions(approaches=["zero-shot"], budget="smoke",
                                         results=tmp_path / "r.db",
                                         overrides=["task.metric=chrf"]))


def test_a_data_folder_task_yaml_sets_options_and_the_command_line_wins(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _free_text(folder / "train.jsonl")
    _free_text(folder / "eval.jsonl", 12, "Fix the grammar of this sentence.")
    (folder / "task.yaml").write_text("# how to measure this data\nmetric: chrf\n"
                                      "scoring: generation\n")
    task = resolve_task(str(folder))
    assert folder_task_options(str(folder), task) == {"metric": "chrf", "scoring": "generation"}
    session = ExperimentSession(SessionOptions(approaches=["zero-shot"], task=str(folder),
                                               budget="smoke", results=tmp_path / "r.db"))
    assert session.headline_metric == "chrf"
    session = ExperimentSession(SessionOptions(
        approaches=["zero-shot"], task=str(folder), budget="smoke", results=tmp_path / "r.db",
        overrides=["task.metric=rouge_l"]))
    assert session.headline_metric == "rouge_l"
    (folder / "task.yaml").write_text("scoring: generation\n\nmetrc: chrf\n")
    with pytest.raises(DataError) as error:
        folder_task_options(str(folder), task)
    assert str(error.value).startswith(f"{folder / 'task.yaml'}:3: field 'metrc': ")
    assert "Did you mean 'metric'?" in str(error.value)
    (folder / "task.yaml").write_text("metric: [chrf\n")
    with pytest.raises(DataError, match=r"task.yaml:\d+: not valid YAML"):
        folder_task_options(str(folder), task)


@pytest.mark.slow
def test_a_free_text_file_gets_graded_paired_numbers_on_the_chosen_headline(tmp_path,
                                                                            tiny_model_dir):
    _free_text(tmp_path / "gram.jsonl", 240)
    result = run_suites([
        "--task=gram.jsonl", "--approach=zero-shot,few-shot", "--budget=smoke",
        f"--model={tiny_model_dir}", "--results=r.db", "--set", "task.metric=chrf",
    ], tmp_path, suites=["test_accuracy.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout[result.stdout.index("tunebench results"):]
    assert "candidates are compared on chrf" in summary
    header = next(line for line in summary.splitlines() if line.startswith("approach"))
    assert header.split()[2] == "chrf"  # the headline is the first metric column
    db = tmp_path / "r.db"
    runs = query_db(db, "SELECT id, info_json FROM runs ORDER BY id")
    assert [json.loads(r["info_json"])["headline_metric"] for r in runs] == ["chrf", "chrf"]
    for run in runs:
        metrics = {m["name"]: m for m in query_db(
            db, "SELECT * FROM metrics WHERE run_id = ? AND suite = 'accuracy'", run["id"])}
        for name in ("exact_match", "f1", "rouge_l", "chrf", "bleu", "semantic_similarity",
                     "ref_logprob"):
            row = metrics[name]
            assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["n"] == 24
        assert metrics["ref_perplexity"]["value"] == pytest.approx(
            math.exp(-metrics["ref_logprob"]["value"]))
        items = query_db(db, "SELECT extra_json, reference FROM examples WHERE run_id = ? AND "
                         "suite = 'accuracy.generation'", run["id"])
        chrfs = [json.loads(i["extra_json"])["chrf"] for i in items]
        assert sum(chrfs) / len(chrfs) == pytest.approx(metrics["chrf"]["value"])
    conn = data.connect(db)
    long = data.metrics(conn)
    assert data.run_headlines(conn) == ["chrf"]
    board, ranked_by = leaderboard_cells(long)
    assert ranked_by == "chrf" and list(board.columns[5:7]) == ["chrf", "gen_accuracy"]
    _, found, metric = decision.report(
        long, items=lambda suite, ids, value: example_data.item_scores_by_run(
            conn, ids, suite, value))
    assert metric == "chrf" and found.metric == "chrf"
    assert "paired randomisation test" in found.rule
    assert {v.test for v in found.verdicts[1:]} == {"paired"}
    assert found.verdicts[1].shared == 24  # 10% of 240 items



@pytest.mark.slow
def test_curves_of_a_free_text_task_follow_its_headline(tmp_path, tiny_model_dir):
    """--label-noise on free text: the robustness curve is the headline (here chrF, which the
    tiny model's replies score above 0), not exact match (0), paired on the same items."""
    _free_text(tmp_path / "gram.jsonl", 240)
    result = run_suites([
        "--task=gram.jsonl", "--approach=full-ft", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "--label-noise=0.5", "-k", "generation_accuracy or noise",
        "--set", "task.metric=chrf",
    ], tmp_path, env={"TUNEBENCH_CACHE": str(tmp_path / "cache")},
        suites=["test_accuracy.py", "test_overfitting.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    db = tmp_path / "r.db"
    clean = query_db(db, "SELECT id FROM runs WHERE json_extract(config_json, '$.label_noise') "
                     "IS NULL")[0]["id"]
    metrics = {m["name"]: m for m in query_db(db, "SELECT * FROM metrics WHERE run_id = ?",
                                              clean)}
    start, noisy = metrics["noise_robustness[0]"], metrics["noise_robustness[0.5]"]
    assert start["value"] == pytest.approx(metrics["chrf"]["value"])
    assert start["value"] > 0 == metrics["gen_accuracy"]["value"]  # not exact match
    assert json.loads(start["extra_json"])["metric"] == "chrf"
    drop = metrics["noise_drop[0.5]"]
    assert drop["value"] == pytest.approx(noisy["value"] - start["value"])
    assert drop["ci_low"] <= drop["value"] <= drop["ci_high"]
