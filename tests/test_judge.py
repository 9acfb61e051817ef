"""The LLM judge (``--judge``): prompts, grades read from log-likelihoods, the position-swap
arithmetic and its bias readings, resolving a judge spec, and the judge suite end to end."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch

from harness.core.approach import Candidate
from harness.measure.judge import (
    GRADES,
    Grade,
    compare_with_reference,
    estimated_parameters,
    grade_replies,
    grading_prompt,
    judge_candidate,
    judge_metrics,
    normalised,
    pairwise_prompt,
    resolve_judge,
)
from harness.models.lm_candidate import LMCandidate
from harness.runner.session import ExperimentSession, SessionOptions
from harness.tasks.base import Message
from harness.testing import make_tiny_model
from tests.conftest import run_suites


class ScriptedJudge(Candidate):
    """Answers ``score_choices`` with ``script(prompt_text, choices)``; never generates."""

    def __init__(self, script: Callable[[str, Sequence[str]], list[float]]) -> None:
        super().__init__()
        self.script = script
        self.prompts: list[str] = []
        self.choices: set[tuple[str, ...]] = set()

    def generate(self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32
                 ) -> list[str]:
        raise AssertionError("the judge reads grades by log-likelihood, never by generating")

    def score_choices(self, prompts: Sequence[Sequence[Message]],
                      choices: Sequence[Sequence[str]]) -> list[list[float]]:
        texts = ["\n".join(m["content"] for m in prompt) for prompt in prompts]
        self.prompts += texts
        self.choices |= {tuple(options) for options in choices}
        return [self.script(text, options) for text, options in zip(texts, choices, strict=True)]


def shown(text: str, label: str) -> str:
    """The reply shown under ``[Reply A]`` / ``[Reply B]`` in a pairwise prompt."""
    return text.split(f"[Reply {label}]\n", 1)[1].split("\n\n", 1)[0]


QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 2?"]
REFERENCES = ["Paris", "Crimson red", "Four"]
REPLIES = ["The capital of France is Paris.", "Blue", "4"]


def test_prompts_show_question_reference_and_reply():
    grading = "\n".join(m["content"] for m in grading_prompt("Q?", "the reference", "my reply"))
    for part in ("Q?", "[Reference answer]\nthe reference", "[Reply]\nmy reply", "1 to 5"):
        assert part in grading
    pair = "\n".join(m["content"] for m in pairwise_prompt("Q?", "first one", "second one"))
    assert shown(pair, "A") == "first one" and shown(pair, "B") == "second one"


def test_grades_are_read_from_choice_loglikelihoods():
    probabilities = [0.1, 0.1, 0.2, 0.2, 0.4]
    offset = -7.0  # log-likelihoods need not sum to one: they are normalised over the grades
    judge = ScriptedJudge(lambda text, choices: [math.log(p) + offset for p in probabilities])
    grades = grade_replies(judge, QUESTIONS, REFERENCES, REPLIES)
    assert all(reply in text and reference in text for text, reply, reference in zip(
        judge.prompts, REPLIES, REFERENCES, strict=True))
    assert judge.choices == {("1", "2", "3", "4", "5")}
    grade = grades[0]
    assert grade.grade == 5
    assert grade.expected == pytest.approx(0.1 + 0.2 + 0.6 + 0.8 + 2.0)
    assert grade.score == pytest.approx((3.7 - 1) / 4)
    metrics = judge_metrics(grades, compare_with_reference(ScriptedJudge(always_a), QUESTIONS,
                                                           REFERENCES, REPLIES))
    assert metrics["llm_judge_score"].value == pytest.approx(0.675)
    assert metrics["llm_judge_grade"].value == 5 and metrics["llm_judge_score"].n == 3


def test_grade_follows_what_the_judge_finds_likely():
    def script(text: str, choices: Sequence[str]) -> list[float]:
        right = "The capital of France is Paris." in text  # a judge that knows the first
        return [0.0 if (c == "5") == right and c in ("1", "5") else -30.0
                for c in choices]

    grades = grade_replies(ScriptedJudge(script), QUESTIONS, REFERENCES, REPLIES)
    assert [g.grade for g in grades] == [5, 1, 1]
    assert grades[0].expected == pytest.approx(5, abs=1e-3)
    assert grades[1].score == pytest.approx(0, abs=1e-3)


def always_a(text: str, choices: Sequence[str]) -> list[float]:
    return [-0.1, -3.0]


def prefers_longer(text: str, choices: Sequence[str]) -> list[float]:
    a, b = shown(text, "A"), shown(text, "B")
    return [-0.1, -3.0] if len(a) > len(b) else [-3.0, -0.1]


def test_a_position_biased_judge_never_agrees_with_itself():
    judge = ScriptedJudge(always_a)
    verdicts = compare_with_reference(judge, QUESTIONS, REFERENCES, REPLIES)
    assert judge.choices == {("A", "B")} and len(judge.prompts) == 2 * len(REPLIES)
    assert [(v.reply_first, v.reference_first) for v in verdicts] == [("reply", "reference")] * 3
    metrics = _pair_metrics(verdicts)
    assert metrics["llm_judge_position_agreement"].value == 0.0
    assert metrics["llm_judge_first_preferred"].value == 1.0
    assert metrics["llm_judge_win_rate"].value == 0.5  # inconsistent verdicts count half


def test_a_length_biased_judge_always_prefers_the_longer_reply():
    verdicts = compare_with_reference(ScriptedJudge(prefers_longer), QUESTIONS, REFERENCES,
                                      REPLIES)
    metrics = _pair_metrics(verdicts)
    assert metrics["llm_judge_longer_preferred"].value == 1.0
    assert metrics["llm_judge_position_agreement"].value == 1.0  # consistent, for length
    assert metrics["llm_judge_first_preferred"].value == 0.5
    assert [v.win for v in verdicts] == [1.0, 0.0, 0.0]  # only the first reply is longer
    assert metrics["llm_judge_win_rate"].value == pytest.approx(1 / 3)


def test_length_preference_is_read_only_where_lengths_differ():
    verdicts = compare_with_reference(ScriptedJudge(prefers_longer), ["Q?", "Q?"],
                                      ["abc", "abc"], ["xyz", "a longer reply"])
    assert verdicts[0].reply_longer is None and verdicts[0].longer_preferred is None
    assert _pair_metrics(verdicts)["llm_judge_longer_preferred"].n == 1
    assert "llm_judge_longer_preferred" not in _pair_metrics(verdicts[:1])


def _pair_metrics(verdicts):
    """The judge's metrics for ``verdicts``, with uninformative grades."""
    return judge_metrics([Grade(normalised([0.0] * len(GRADES)))] * len(verdicts), verdicts)


def test_the_tiny_model_grades_and_compares_through_its_own_score_choices(tiny_lm):
    judge = LMCandidate(*tiny_lm)
    grades = grade_replies(judge, QUESTIONS, REFERENCES, REPLIES)
    assert all(sum(g.probabilities) == pytest.approx(1) and 1 <= g.grade <= 5 for g in grades)
    assert all(0 <= g.score <= 1 for g in grades)
    verdicts = compare_with_reference(judge, QUESTIONS, REFERENCES, REPLIES)
    assert {v.reply_first for v in verdicts} <= {"reply", "reference", "tie"}


# -- resolving --judge -----------------------------------------------------------------------

def session(tmp_path: Path, model: Path, **options) -> ExperimentSession:
    return ExperimentSession(SessionOptions(
        approaches=["zero-shot"], task=str(free_text_task(tmp_path)), model=str(model),
        budget="smoke",
        results=tmp_path / "r.db", **options))


def test_a_model_judge_on_the_session_model_is_its_base_candidate(tmp_path, tiny_model_dir):
    s = session(tmp_path, tiny_model_dir, judge=str(tiny_model_dir))
    judge = resolve_judge(s)
    assert judge.kind == "model" and judge.is_session_model
    assert judge.identity.startswith(f"model {tiny_model_dir.resolve()} (config:")
    assert judge.small and "a demonstration with a small model, not a verdict" in (
        judge.header_line())
    assert judge.judges_itself("zero-shot") and not judge.judges_itself("few-shot")
    assert judge_candidate(s, judge) is s.base_candidate


def test_a_model_judge_on_another_model_loads_it_once_frozen(tmp_path, tiny_model_dir):
    other = make_tiny_model(tmp_path / "other-model", seed=1)
    s = session(tmp_path, tiny_model_dir, judge=str(other))
    judge = resolve_judge(s)
    assert judge.kind == "model" and not judge.is_session_model
    assert not judge.judges_itself("zero-shot")
    judging = judge_candidate(s, judge)
    assert judging is not s.base_candidate and judge_candidate(s, judge) is judging
    assert judging.model.config.name_or_path == str(other.resolve())
    def linear_dtypes(model):
        return {m.weight.dtype for m in model.modules() if isinstance(m, torch.nn.Linear)}

    # stored like the session's own frozen base (bf16 linear weights where the CPU runs it)
    assert linear_dtypes(judging.model) == linear_dtypes(s.base_candidate.model)
    assert judging.precision is s.precision


def test_an_approach_judge_names_its_config(tmp_path, tiny_model_dir):
    judge = resolve_judge(session(tmp_path, tiny_model_dir, judge="few-shot",
                                  overrides=["few-shot.k=2"]))
    assert judge.kind == "approach"
    assert judge.identity.startswith(f"approach few-shot on {tiny_model_dir.resolve()}, config ")
    other = resolve_judge(session(tmp_path, tiny_model_dir, judge="few-shot",
                                  overrides=["few-shot.k=3"]))
    assert other.identity != judge.identity  # another config, another judge
    assert judge.judges_itself("few-shot") and not judge.judges_itself("zero-shot")


def test_a_spec_that_is_neither_model_nor_approach_is_refused(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match=r"--judge few-shto: neither .* did you mean 'few-shot'"):
        resolve_judge(session(tmp_path, tiny_model_dir, judge="few-shto"))
    (tmp_path / "notes").mkdir()
    with pytest.raises(ValueError, match="no model folder"):
        resolve_judge(session(tmp_path, tiny_model_dir, judge=str(tmp_path / "notes")))
    with pytest.raises(ValueError, match="--judge-self needs --judge"):
        resolve_judge(session(tmp_path, tiny_model_dir, judge_self=True))
    assert resolve_judge(session(tmp_path, tiny_model_dir)) is None


def test_a_judge_size_is_estimated_from_its_config(tmp_path):
    smollm2 = {"hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536,
               "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
               "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(smollm2))
    assert 130e6 < estimated_parameters(tmp_path / "config.json") < 140e6  # SmolLM2-135M
    llama = {"hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672,
             "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256,
             "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(llama))
    assert 69e9 < estimated_parameters(tmp_path / "config.json") < 72e9  # Llama-3-70B
    assert estimated_parameters(tmp_path / "missing.json") is None


# -- end to end --------------------------------------------------------------------------------

def free_text_task(folder: Path) -> Path:
    """Short questions with free answers: 12 to train on (few-shot demos), 6 to judge."""
    facts = [("capital of France", "Paris"), ("colour of the sky", "blue"),
             ("largest planet", "Jupiter"), ("opposite of hot", "cold"),
             ("number after three", "four"), ("first month", "January"),
             ("author of Hamlet", "Shakespeare"), ("metal in wires", "copper"),
             ("animal that barks", "dog"), ("season after winter", "spring"),
             ("day after Monday", "Tuesday"), ("gas we breathe", "oxygen"),
             ("frozen water", "ice"), ("sun rises in the", "east"),
             ("opposite of up", "down"), ("colour of grass", "green"),
             ("fastest land animal", "cheetah"), ("home of bees", "hive")]
    path = folder / "facts.jsonl"
    path.write_text("".join(
        json.dumps({"instruction": f"Name the {q}.", "output": a,
                    "split": "train" if i < 12 else "eval"}) + "\n"
        for i, (q, a) in enumerate(facts)), encoding="utf-8")
    return path


@pytest.mark.slow
def test_the_judge_suite_records_metrics_rows_and_refuses_self_judging(tiny_model_dir,
                                                                        tmp_path):
    task = free_text_task(tmp_path)
    args = [f"--task={task}", "--approach=zero-shot,few-shot", "--budget=smoke",
            f"--model={tiny_model_dir}", f"--judge={tiny_model_dir}", "--set", "few-shot.k=2",
            "-rs"]
    env = {"TUNEBENCH_CACHE": str(tmp_path / "cache")}
    first = run_suites([*args, "--results=r.db"], tmp_path, env=env, suites=["test_judge.py"])
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-3000:]
    assert "zero-shot is the judge" in output and "--judge-self" in output
    assert "judge: model" in output and "not a verdict" in output
    judged = judge_metrics_in(tmp_path / "r.db")
    assert set(judged) == {"few-shot"}
    identity = f"model {tiny_model_dir.resolve()} (config:"
    for name in ("llm_judge_score", "llm_judge_grade", "llm_judge_win_rate",
                 "llm_judge_position_agreement", "llm_judge_first_preferred"):
        value, low, high, n, extra = judged["few-shot"][name]
        assert low <= value <= high and n == 6, name
        assert extra["judge"].startswith(identity) and extra["self_judged"] is False
    rows = sqlite3.connect(tmp_path / "r.db").execute(
        "SELECT extra_json FROM examples WHERE suite = 'judge.judge'").fetchall()
    assert len(rows) == 6
    row = json.loads(rows[0][0])
    assert {"grade", "expected_grade", "verdict_reply_first", "verdict_reference_first",
            "judge"} <= set(row) and row["judge"].startswith(identity)

    second = run_suites([*args, "--judge-self", "--results=self.db"], tmp_path, env=env,
                        suites=["test_judge.py"])
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    judged = judge_metrics_in(tmp_path / "self.db")
    assert set(judged) == {"few-shot", "zero-shot"}
    assert judged["zero-shot"]["llm_judge_score"][4]["self_judged"] is True
    assert judged["few-shot"]["llm_judge_score"][4]["self_judged"] is False


def judge_metrics_in(db: Path) -> dict[str, dict[str, tuple]]:
    found: dict[str, dict[str, tuple]] = {}
    connection = sqlite3.connect(db)
    for approach, name, value, low, high, n, extra in connection.execute(
            "SELECT r.approach, m.name, m.value, m.ci_low, m.ci_high, m.n, m.extra_json "
            "FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.suite = 'judge'"):
        found.setdefault(approach, {})[name] = (value, low, high, n, json.loads(extra))
    connection.close()
    return found


@pytest.mark.slow
def test_a_bad_judge_is_a_usage_error(tiny_model_dir, tmp_path):
    result = run_suites([f"--model={tiny_model_dir}", "--judge=lroa", "--budget=smoke",
                         "--results=r.db", "--collect-only", "-q"], tmp_path,
                        suites=["test_judge.py"])
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert "--judge lroa: neither a registered approach nor a model" in result.stderr
    assert "did you mean 'lora'" in result.stderr
