"""Tests for the synthetic knowledge-base QA task (harness/tasks/kbqa/)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from harness.tasks.base import Example, Passage, TaskData, normalize_text
from harness.tasks.kbqa import world as kw
from harness.tasks.kbqa.task import INSTRUCTION, SYSTEM, UPDATE_FRACTION, KBQATask, build
from harness.tasks.qa import REFUSAL

SPLITS = ("train", "validation", "eval")
QUESTION_KINDS = ("single", "multi-hop", "unanswerable")


@pytest.fixture(scope="module")
def data() -> TaskData:
    return KBQATask().load(seed=0)


def questions(data: TaskData, split: str | None = None) -> list[Example]:
    """The question examples (not document recitations) of one split or of all three."""
    items = [e for s in SPLITS if split in (None, s) for e in getattr(data, s)]
    return [e for e in items if e.meta["kind"] != "document"]


def question_text(example: Example) -> str:
    return example.messages[-1]["content"].split("Question: ", 1)[-1]


def occurs(answer: str, text: str) -> bool:
    """Whether ``answer`` occurs as whole words in ``text`` after normalisation."""
    return f" {normalize_text(answer)} " in f" {normalize_text(text)} "


def by_id(passages: list[Passage]) -> dict[str, Passage]:
    return {p.id: p for p in passages}


def gold(example: Example) -> list[str]:
    return [g for g in example.meta["gold_passages"].split(",") if g]


def test_sizes_and_kinds(data: TaskData) -> None:
    assert len(data.corpus) >= 150
    kinds = Counter(e.meta["kind"] for e in questions(data))
    assert sum(kinds.values()) >= 600
    assert kinds["multi-hop"] >= 60 and kinds["unanswerable"] >= 60
    assert len(questions(data, "train")) >= 600
    assert 80 <= len(data.validation) <= 120 and 350 <= len(data.eval) <= 450
    eval_kinds = Counter(e.meta["kind"] for e in data.eval)
    assert set(eval_kinds) == set(QUESTION_KINDS)
    assert 0.10 <= eval_kinds["unanswerable"] / len(data.eval) <= 0.20
    assert 0.08 <= eval_kinds["multi-hop"] / len(data.eval) <= 0.16
    for split in ("train", "validation"):
        assert {e.meta["kind"] for e in questions(data, split)} == set(QUESTION_KINDS)
    assert data.labels == ()


def test_train_recites_every_document_once(data: TaskData) -> None:
    documents = [e for e in data.train if e.meta["kind"] == "document"]
    assert sorted(e.meta["gold_passages"] for e in documents) == sorted(p.id for p in data.corpus)
    passages = by_id(data.corpus)
    for example in documents:
        passage = passages[example.meta["gold_passages"]]
        assert example.answer == passage.text
        assert f'"{passage.title}"' in example.messages[-1]["content"]
    # interleaved, not appended: documents appear in the first and the last fifth of train
    fifth = len(data.train) // 5
    for part in (data.train[:fifth], data.train[-fifth:]):
        assert any(e.meta["kind"] == "document" for e in part)
        assert any(e.meta["kind"] != "document" for e in part)


def test_messages_and_meta(data: TaskData) -> None:
    ids = [e.id for s in SPLITS for e in getattr(data, s)] + [e.id for e in data.update_eval]
    assert len(ids) == len(set(ids))
    for example in questions(data) + data.update_eval:
        system, user = example.messages
        assert system == {"role": "system", "content": SYSTEM}
        assert user["role"] == "user" and user["content"].startswith(INSTRUCTION)
        assert "I don't know." in user["content"]
        assert {"kind", "gold_passages", "fact", "in_train"} <= set(example.meta)
        assert example.meta["in_train"] in ("yes", "no")
        assert example.choices == ()
        assert len(example.answer.split()) <= 8


def test_no_question_text_shared_between_splits(data: TaskData) -> None:
    texts = {s: [normalize_text(question_text(e)) for e in getattr(data, s)] for s in SPLITS}
    for split, items in texts.items():
        assert len(items) == len(set(items)), f"duplicate question in {split}"
    assert not set(texts["train"]) & set(texts["eval"])
    assert not set(texts["train"]) & set(texts["validation"])
    assert not set(texts["validation"]) & set(texts["eval"])


def test_in_train_marks_facts_asked_in_train(data: TaskData) -> None:
    trained = {e.meta["fact"] for e in questions(data, "train")}
    for split in ("validation", "eval"):
        for example in questions(data, split):
            expected = "yes" if example.meta["fact"] in trained else "no"
            assert example.meta["in_train"] == expected
    for kind in ("single", "multi-hop"):
        flags = Counter(e.meta["in_train"] for e in data.eval if e.meta["kind"] == kind)
        assert flags["yes"] >= 0.3 * sum(flags.values()) and flags["no"] >= 0.3 * sum(
            flags.values()
        )


def test_passage_ids_unique_and_gold_passages_exist(data: TaskData) -> None:
    ids = [p.id for p in data.corpus]
    assert len(ids) == len(set(ids))
    assert len({p.title for p in data.corpus}) == len(ids)
    for example in questions(data) + data.update_eval:
        assert set(gold(example)) <= set(ids)
        assert bool(gold(example)) == (example.meta["kind"] != "unanswerable")


def test_passages_are_short_prose_with_several_facts(data: TaskData) -> None:
    for passage in data.corpus:
        sentences = passage.text.count(". ") + 1
        assert 2 <= sentences <= 7, passage.text
    asked = Counter(g for e in questions(data) if e.meta["kind"] == "single" for g in gold(e))
    assert min(asked[p.id] for p in data.corpus) >= 1
    assert sum(len({e.meta["fact"] for e in questions(data) if gold(e) == [p.id]}) >= 2
               for p in data.corpus) >= 0.9 * len(data.corpus)


def test_single_answers_are_grounded_in_their_passage(data: TaskData) -> None:
    passages = by_id(data.corpus)
    for example in questions(data):
        if example.meta["kind"] == "single":
            (pid,) = gold(example)
            assert occurs(example.answer, passages[pid].text), (example.answer, pid)


def test_multi_hop_needs_two_linked_passages(data: TaskData) -> None:
    passages = by_id(data.corpus)
    world = build(0).world
    entities = {e.pid: e for table in world.tables.values() for e in table}
    multi = [e for e in questions(data) if e.meta["kind"] == "multi-hop"]
    for example in multi:
        first, second = gold(example)
        assert first != second
        assert occurs(example.answer, passages[second].text)
        # the first passage names the entity of the second (the bridge)
        assert occurs(entities[second].name, passages[first].text)
        assert not occurs(entities[second].name, question_text(example))
    assert len({e.meta["attribute"] for e in multi}) >= 5


def test_unanswerable_questions_ask_what_no_passage_states(data: TaskData) -> None:
    texts = [p.text for p in data.corpus + data.updated_corpus]
    titles = [p.title for p in data.corpus + data.updated_corpus]
    unanswerable = [e for e in questions(data) if e.meta["kind"] == "unanswerable"]
    reasons = Counter(e.meta["attribute"].split(".")[0] for e in unanswerable)
    assert reasons["unknown-entity"] >= 20 and reasons["unstated"] >= 20
    for example in unanswerable:
        assert example.answer == REFUSAL
        assert example.meta["gold_passages"] == ""
        absent = example.meta["absent"]
        assert occurs(absent, question_text(example))
        assert not any(occurs(absent, text) for text in texts + titles), absent


def test_same_seed_same_data_other_seed_differs(data: TaskData) -> None:
    build.cache_clear()  # regenerate rather than return the cached build
    again = KBQATask().load(seed=0)
    assert again.fingerprint() == data.fingerprint()
    other = KBQATask().load(seed=1)
    assert other.fingerprint() != data.fingerprint()
    names = [{e.name for kind in ("product", "person", "office", "policy")
              for e in build(seed).world.tables[kind]} for seed in (0, 1)]
    assert len(names[0] & names[1]) <= 0.05 * len(names[0])
    answers = {e.answer for e in questions(data) if e.meta["kind"] == "single"}
    other_answers = {e.answer for e in questions(other) if e.meta["kind"] == "single"}
    assert len(answers & other_answers) < 0.3 * len(answers)


def test_load_is_fast() -> None:
    build.cache_clear()
    start = time.perf_counter()
    KBQATask().load(seed=7)
    assert time.perf_counter() - start < 1.0


def test_eval_prefixes_are_balanced_samples(data: TaskData) -> None:
    head = Counter(e.meta["kind"] for e in data.eval[:100])
    assert set(head) == set(QUESTION_KINDS)
    assert 10 <= head["unanswerable"] <= 20 and 8 <= head["multi-hop"] <= 16
    assert len(data.subset(None, None, 50).update_eval) == 50


def test_updated_corpus_changes_the_stated_fraction_of_facts(data: TaskData) -> None:
    built = build(0)
    assert [p.id for p in data.updated_corpus] == [p.id for p in data.corpus]
    facts = kw.changeable_facts(built.world)
    changed = [
        (kind, index, attr) for kind, index, attr in facts
        if kw.answer(built.world, kind, index, attr)
        != kw.answer(built.updated_world, kind, index, attr)
    ]
    assert sorted(changed) == sorted(built.changes)
    assert abs(len(changed) / len(facts) - UPDATE_FRACTION) <= 0.02
    assert {attr for _, _, attr in changed} >= {"price", "name", "warranty", "value"}
    # nothing else changed: a changed passage holds a changed fact or names a renamed product
    renamed = [kw.answer(built.updated_world, "product", i, "name")
               for kind, i, attr in changed if attr == "name"]
    updated = by_id(data.updated_corpus)
    touched = {g for e in data.update_eval for g in gold(e)}
    for passage in data.corpus:
        if passage.text != updated[passage.id].text:
            assert passage.id in touched or any(occurs(n, updated[passage.id].text)
                                                for n in renamed)


def test_update_questions_have_new_grounded_answers(data: TaskData) -> None:
    assert len(data.update_eval) == len(build(0).changes) >= 40
    old, new = by_id(data.corpus), by_id(data.updated_corpus)
    for example in data.update_eval:
        assert example.meta["kind"] == "update"
        (pid,) = gold(example)
        old_answer = example.meta["old_answer"]
        assert normalize_text(example.answer) != normalize_text(old_answer)
        assert occurs(example.answer, new[pid].text)
        assert occurs(old_answer, old[pid].text)
    renames = [e for e in data.update_eval if e.meta["fact"].endswith(".name")]
    assert renames
    for example in renames:
        assert f"(formerly {example.meta['old_answer']})" in new[gold(example)[0]].text
        assert "product managed by" in question_text(example) or "manages" in question_text(
            example
        )


def test_scoring(data: TaskData) -> None:
    task = KBQATask()
    answerable = next(e for e in data.eval if e.meta["kind"] == "single")
    unanswerable = next(e for e in data.eval if e.meta["kind"] == "unanswerable")
    reply = f"The answer is {answerable.answer}."
    assert task.score_generation(reply, answerable) == (reply, True)
    assert task.score_generation("I don't know.", answerable)[1] is False
    assert task.score_generation("Something else entirely.", answerable)[1] is False
    assert task.score_generation("I don't know.", unanswerable)[1] is True
    assert task.score_generation("The passages do not say.", unanswerable)[1] is True
    assert task.score_generation(answerable.answer, unanswerable)[1] is False
    exact = task.extra_scores(answerable.answer, answerable)
    assert exact == {"exact_match": 1.0, "f1": 1.0, "refused": 0.0}
    partial = task.extra_scores(reply, answerable)
    assert partial["exact_match"] == 0.0 and 0.0 < partial["f1"] < 1.0
    assert task.extra_scores("I don't know.", unanswerable) == {
        "exact_match": 1.0, "f1": 1.0, "refused": 1.0,
    }
    assert task.extra_scores("I don't know.", answerable)["refused"] == 1.0
    # no reference answer looks like a refusal, so a correct reply is never scored wrong
    for example in questions(data) + data.update_eval:
        assert task.score_generation(f"{example.answer}", example)[1], example.answer


def test_task_is_registered() -> None:
    from harness.core.plugins import tasks

    registry = tasks()
    assert "kb-qa" in registry
    assert registry.get("kb-qa") is KBQATask
    assert KBQATask.max_new_tokens == 32
