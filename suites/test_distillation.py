"""Distilled students against their teachers: agreement, size and speed (plugins/distill.py).

A distilled student is measured by every suite like any candidate; this suite adds what only
a student has, its teacher, scored on the same items and requests:

- ``teacher_agreement``: share of eval items where student and teacher give the same answer
  (the task's headline scoring, an unrecognised answer never agrees), and the paired accuracy
  difference ``accuracy_vs_teacher`` (student minus teacher, same items);
- ``size_ratio``: the student's parameters over the teacher's;
- ``latency_speedup`` and ``decode_speedup``: the teacher's batch-1 latency p50 and decode
  time per token over the student's, measured here on the same requests, interleaved
  (``harness.measure.latency.measure_pair``: each request timed on both, the order
  alternating) so a drift of the machine's speed falls on both sides (paired bootstrap CIs);
  the teacher's own numbers and serving cost are recorded beside. A student with the
  teacher's architecture (``student=self``) is the null control: its speedups should be 1.

Candidates without a teacher (:class:`~harness.core.capabilities.TaughtByTeacher`) are skipped.
"""

import numpy as np
import pytest

from harness.core.capabilities import TaughtByTeacher
from harness.measure.evaluate import score_primary
from harness.measure.latency import measure_pair
from harness.measure.metrics import accuracy, mean, paired_difference, percentile, ratio
from harness.models.student import parameter_count

REQUESTS = {"smoke": 3, "quick": 24, "full": 48}
"""Batch-1 requests per candidate at each budget (as the latency suite)."""
SMOKE_DECODE = {"decode_prompts": ("Describe a quiet morning in a small town.",),
                "decode_tokens": 6}


@pytest.fixture
def teacher(candidate):
    if not isinstance(candidate, TaughtByTeacher):
        pytest.skip("this candidate has no teacher (not a distilled student)")
    return candidate.teacher


def test_teacher_agreement(candidate, teacher, task, task_data, record, run_seed):
    student_rows = score_primary(candidate, task, task_data.eval, record.run.scored)
    teacher_rows = score_primary(teacher, task, task_data.eval)
    agree = [s["prediction"] is not None and s["prediction"] == t["prediction"]
             for s, t in zip(student_rows, teacher_rows, strict=True)]
    headline = "accuracy" if all(e.choices for e in task_data.eval) else "gen_accuracy"
    teacher_correct = [bool(t["correct"]) for t in teacher_rows]
    student_correct = [bool(s["correct"]) for s in student_rows]
    agreement = accuracy(agree, seed=run_seed)
    record.metric("teacher_agreement", agreement)
    record.metric(f"teacher_{headline}", accuracy(teacher_correct, seed=run_seed))
    record.metric("accuracy_vs_teacher",
                  paired_difference(teacher_correct, student_correct, seed=run_seed),
                  metric=headline)
    record.examples([{**row, "extra": {**row["extra"], "student": s["prediction"]}}
                     for row, s in zip(teacher_rows, student_rows, strict=True)], part="teacher")

    assert len(agree) == len(task_data.eval)
    assert 0.0 <= agreement.value <= 1.0


def test_student_size(candidate, teacher, record):
    student, teachers = parameter_count(candidate.model), parameter_count(teacher.model)
    record.metric("student_params", student)
    record.metric("teacher_params", teachers)
    record.metric("size_ratio", student / teachers)
    layers = candidate.info.get("student_layers")
    if layers:
        record.metric("student_layers", layers)
        record.metric("teacher_layers", candidate.info["teacher_layers"])

    assert student > 0 and teachers > 0


def test_speedup(candidate, teacher, task, task_data, tunebench, record, run_seed):
    budget = tunebench.budget.name
    requests = [e.messages for e in task_data.eval[: REQUESTS[budget]]]
    options = SMOKE_DECODE if budget == "smoke" else {}
    student, teachers = measure_pair(candidate, teacher, requests, task.max_new_tokens,
                                     **options)
    ms = 1000.0
    record.metric("teacher_latency_p50_ms",
                  percentile([x * ms for x in teachers.end_to_end], 50, seed=run_seed))
    record.metric("latency_speedup", ratio(teachers.end_to_end, student.end_to_end,
                                           lambda v: np.median(v, axis=1), seed=run_seed))
    if teachers.decode_per_token:  # replies too short to time decoding leave none
        record.metric("teacher_decode_ms_per_token",
                      mean([x * ms for x in teachers.decode_per_token], seed=run_seed))
    if (teachers.decode_per_token and student.decode_per_token  # and above the timer noise
            and np.mean(teachers.decode_per_token) > 0 and np.mean(student.decode_per_token) > 0):
        record.metric("decode_speedup", ratio(teachers.decode_per_token,
                                              student.decode_per_token,
                                              lambda v: v.mean(axis=1), seed=run_seed))
    price = tunebench.options.price_per_hour
    rate = teachers.batched_requests / teachers.batched_seconds
    record.metric("teacher_cost_per_1k_requests", 1000 / rate / 3600 * price,
                  price_per_hour=price)

    assert len(student.end_to_end) == len(teachers.end_to_end) == len(requests)
    assert all(x > 0 for x in student.end_to_end + teachers.end_to_end)
