"""Tests for the ``general`` forgetting-probe task (harness/tasks/general/)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from harness.tasks.base import Example, TaskData, normalize_text
from harness.tasks.general.task import (
    CATEGORIES,
    GENERAL_TEXT,
    INSTRUCTION,
    GeneralTask,
    general_text,
)

ARITHMETIC = re.compile(r"Question: What is (\d+) ([+\-×]) (\d+)\?\n")
READING = re.compile(r"Passage: (.+)\nQuestion: ")


@pytest.fixture(scope="module")
def data() -> TaskData:
    return GeneralTask().load(seed=0)


def prompt(example: Example) -> str:
    return example.messages[-1]["content"]


def question(example: Example) -> str:
    """The passage (if any) and the question, without the instruction."""
    return prompt(example).removesuffix(INSTRUCTION)


def test_shape_and_categories(data: TaskData) -> None:
    assert data.name == "general" and data.labels == ()
    assert data.train == [] and data.validation == [] and data.corpus == []
    assert len(data.eval) >= 400
    counts = Counter(e.meta["category"] for e in data.eval)
    assert set(counts) == set(CATEGORIES) and len(CATEGORIES) >= 6
    assert all(n >= 60 for n in counts.values()), counts
    assert max(counts.values()) - min(counts.values()) <= 10, counts


def test_deterministic_per_seed() -> None:
    first, again, other = (GeneralTask().load(seed).eval for seed in (0, 0, 1))
    assert first == again
    assert [e.messages for e in first] == [e.messages for e in again]
    assert [e.id for e in first] != [e.id for e in other]
    assert [e.messages for e in first] != [e.messages for e in other]
    assert GeneralTask().load(0).fingerprint() == GeneralTask().load(0).fingerprint()


def test_unique_ids_and_questions(data: TaskData) -> None:
    ids = [e.id for e in data.eval]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"general-[a-z-]+-\d{4}", i) for i in ids)
    for example in data.eval:
        slug = example.meta["category"].replace(" ", "-")
        assert example.id.startswith(f"general-{slug}-")
    questions = [normalize_text(question(e)) for e in data.eval]
    duplicates = [q for q, n in Counter(questions).items() if n > 1]
    assert not duplicates, duplicates[:5]


def test_choices_and_prompts(data: TaskData) -> None:
    for example in data.eval:
        assert len(example.choices) == 4 and len(set(example.choices)) == 4, example.id
        assert example.answer in example.choices
        assert all(c and c == c.strip() and "," not in c for c in example.choices)
        assert all(len(c.split()) <= 3 for c in example.choices), example.choices
        assert len(example.messages) == 1 and example.messages[0]["role"] == "user"
        text = prompt(example)
        assert text.endswith(f"?\n{INSTRUCTION}") or text.endswith(f".\n{INSTRUCTION}")
        assert "Question: " in text and not re.search(r"\ba [aeiou]", text, re.I)


def test_answer_position_is_uniform(data: TaskData) -> None:
    positions = Counter(e.choices.index(e.answer) for e in data.eval)
    assert set(positions) == {0, 1, 2, 3}
    for count in positions.values():
        assert 0.15 <= count / len(data.eval) <= 0.35, positions
    for category in CATEGORIES:
        items = [e for e in data.eval if e.meta["category"] == category]
        spread = Counter(e.choices.index(e.answer) for e in items).values()
        assert max(spread) - min(spread) <= 1, category


def test_arithmetic_answers_are_correct(data: TaskData) -> None:
    items = [e for e in data.eval if e.meta["category"] == "arithmetic"]
    operations = Counter()
    for example in items:
        match = ARITHMETIC.search(prompt(example))
        assert match, prompt(example)
        a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
        expected = {"+": a + b, "-": a - b, "×": a * b}[op]
        assert example.answer == str(expected)
        assert all(c.isdigit() for c in example.choices)
        operations[op] += 1
    assert set(operations) == {"+", "-", "×"}


def test_reading_answers_are_in_the_passage(data: TaskData) -> None:
    items = [e for e in data.eval if e.meta["category"] == "reading"]
    for example in items:
        match = READING.search(prompt(example))
        assert match, prompt(example)
        passage = match.group(1)
        present = [c for c in example.choices if f" {normalize_text(c)} " in
                   f" {normalize_text(passage)} "]
        assert present == [example.answer], (passage, example.choices)


def test_any_prefix_covers_every_category(data: TaskData) -> None:
    prefix = data.subset(None, None, 40).eval
    counts = Counter(e.meta["category"] for e in prefix)
    assert set(counts) == set(CATEGORIES)
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_general_text() -> None:
    assert isinstance(GENERAL_TEXT, tuple) and len(GENERAL_TEXT) >= 15
    words = [len(p.split()) for p in GENERAL_TEXT]
    assert sum(words) >= 1000
    assert all(60 <= n <= 120 for n in words), words
    assert len(set(GENERAL_TEXT)) == len(GENERAL_TEXT)
    assert all("  " not in p and p == p.strip() and p.endswith(".") for p in GENERAL_TEXT)
    assert general_text() == list(GENERAL_TEXT)


def test_task_is_registered() -> None:
    from harness.core.plugins import tasks

    assert tasks().get("general") is GeneralTask
    assert GeneralTask.name == "general" and GeneralTask.max_new_tokens == 8
    assert GeneralTask.description == "multiple-choice probes of general ability (forgetting)"


def test_scores_through_the_candidate(tiny_lm, data: TaskData) -> None:
    from harness.measure.evaluate import score_by_choice
    from harness.models.lm_candidate import LMCandidate

    model, tokenizer = tiny_lm
    items = data.eval[:8]
    rows = score_by_choice(LMCandidate(model, tokenizer), items)
    assert len(rows) == 8
    for row, example in zip(rows, items, strict=True):
        assert row["item_id"] == example.id and row["prediction"] in example.choices
        assert row["correct"] == (row["prediction"] == example.answer)
        assert row["extra"]["category"] == example.meta["category"]
