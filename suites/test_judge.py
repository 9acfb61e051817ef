"""A language model judges the candidate's free replies (``--judge MODEL_OR_APPROACH``).

On open tasks (no answer choices), the judge grades every reply against the reference on a 1-5
rubric and compares the two in both orders, MT-Bench's single-answer grading and position-swap
protocol (Zheng et al., 2023; :mod:`harness.measure.judge`). Records ``llm_judge_score``
(expected grade mapped to 0..1), ``llm_judge_grade``, ``llm_judge_win_rate`` against the
reference, and the bias readings ``llm_judge_position_agreement``,
``llm_judge_first_preferred`` and ``llm_judge_longer_preferred``; each with the judge's
identity. The replies are the accuracy suite's (generated once per run).
"""

import pytest

from harness.measure.evaluate import score_by_generation, scored_once
from harness.measure.judge import (
    compare_with_reference,
    grade_replies,
    judge_candidate,
    judge_metrics,
    judged_rows,
    resolve_judge,
)


def test_llm_judge(candidate, task, task_data, tunebench, approach_name, record, run_seed):
    judge = resolve_judge(tunebench)
    if judge is None:
        pytest.skip("no judge: pass --judge MODEL_OR_APPROACH (a model as --model takes it, "
                    "or an approach name) to grade free replies with a language model")
    if task_data.labels:
        pytest.skip(f"task {task_data.name!r} has answer choices; the judge grades free "
                    "replies of open tasks")
    self_judged = judge.judges_itself(approach_name)
    if self_judged and not judge.judge_self:
        pytest.skip(f"{approach_name} is the judge ({judge.identity}); pass --judge-self to "
                    "let it judge its own replies")
    rows = scored_once(record.run.scored, "generation", task_data.eval,
                       lambda items: score_by_generation(candidate, task, items))
    replies = [r["extra"].get("generated", r["prediction"] or "") for r in rows]
    questions = [e.prompt_text for e in task_data.eval]
    references = [r["reference"] for r in rows]
    judging = judge_candidate(tunebench, judge)
    grades = grade_replies(judging, questions, references, replies)
    verdicts = compare_with_reference(judging, questions, references, replies)

    metrics = judge_metrics(grades, verdicts, seed=run_seed)
    about = {"judge": judge.identity, "self_judged": self_judged}
    record.metric("llm_judge_score", metrics["llm_judge_score"], **about)
    record.metric("llm_judge_grade", metrics["llm_judge_grade"], **about)
    record.metric("llm_judge_win_rate", metrics["llm_judge_win_rate"], **about)
    record.metric("llm_judge_position_agreement", metrics["llm_judge_position_agreement"],
                  **about)
    record.metric("llm_judge_first_preferred", metrics["llm_judge_first_preferred"], **about)
    if "llm_judge_longer_preferred" in metrics:  # some reply differs in length from its reference
        record.metric("llm_judge_longer_preferred", metrics["llm_judge_longer_preferred"],
                      **about)
    record.examples(judged_rows(rows, replies, grades, verdicts, judge,
                                self_judged=self_judged), part="judge")

    assert len(grades) == len(verdicts) == len(task_data.eval)
    score = metrics["llm_judge_score"]
    assert 0.0 <= score.value <= 1.0 and score.low <= score.value <= score.high
    assert 1 <= metrics["llm_judge_grade"].value <= 5
