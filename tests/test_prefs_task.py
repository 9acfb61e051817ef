"""Tests for the customer-support preference task (harness/tasks/prefs/)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from harness.tasks.base import Example, TaskData, normalize_text
from harness.tasks.prefs import phrases as bank
from harness.tasks.prefs.judge import (
    CONCISE_WORDS,
    RUDE_MARKERS,
    canonical,
    judge,
    prefer,
    states_fact,
    word_count,
)
from harness.tasks.prefs.task import (
    EVAL_SIZE,
    FLAWS,
    INTENTS,
    QUESTION_POOLS,
    SYSTEM,
    TRAIN_SIZE,
    VALIDATION_SIZE,
    PrefsTask,
)

SPLITS = ("train", "validation", "eval")
POLITE_WORDS = ("thanks", "please", "happy", "glad", "sure", "hi", "hello")


@pytest.fixture(scope="module")
def data() -> TaskData:
    return PrefsTask().load(seed=0)


def items(data: TaskData, *splits: str) -> list[Example]:
    return [e for s in splits or SPLITS for e in getattr(data, s)]


def question(example: Example) -> str:
    return example.messages[-1]["content"]


def tokens(text: str) -> set[str]:
    return set(normalize_text(text).split())


def example_for(fact: str, wrong: str | None = None) -> Example:
    meta = {"flaw": "wrong" if wrong else "rude", "intent": "price", "fact": fact}
    if wrong:
        meta["wrong_fact"] = wrong
    messages = ({"role": "system", "content": f"- The Aero Kettle costs {fact}."},
                {"role": "user", "content": "How much is the Aero Kettle?"})
    return Example(id="x", messages=messages, answer=f"It is {fact}.", meta=meta)


def test_task_identity_and_registration() -> None:
    from harness.core.plugins import tasks

    assert PrefsTask.name == "prefs" and PrefsTask.max_new_tokens == 64
    assert PrefsTask.description and "\n" not in PrefsTask.description
    assert tasks().get("prefs") is PrefsTask


def test_split_sizes(data: TaskData) -> None:
    assert (TRAIN_SIZE, VALIDATION_SIZE, EVAL_SIZE) == (1200, 100, 300)
    assert (len(data.train), len(data.validation), len(data.eval)) == (1200, 100, 300)
    assert len(items(data)) >= 1500
    assert data.name == "prefs" and data.labels == () and data.corpus == []


@pytest.mark.parametrize("split", SPLITS)
def test_examples_are_well_formed(data: TaskData, split: str) -> None:
    for i, example in enumerate(getattr(data, split)):
        assert example.id == f"prefs-{split}-{i:05d}"
        system, user = example.messages
        assert system["role"] == "system" and user["role"] == "user"
        head, *lines = system["content"].splitlines()
        assert head.startswith("You are a support agent for ") and head.endswith(SYSTEM[-20:])
        assert 1 <= len(lines) <= 3 and all(line.startswith("- ") for line in lines)
        assert example.choices == ()
        assert isinstance(example.rejected, str) and example.rejected != example.answer
        assert example.meta["flaw"] in FLAWS and example.meta["intent"] in INTENTS
        assert all(isinstance(v, str) for v in example.meta.values())
        assert ("wrong_fact" in example.meta) == (example.meta["flaw"] == "wrong")


def test_same_seed_same_data_other_seed_different() -> None:
    task = PrefsTask()
    first, again, other = task.load(7), task.load(7), task.load(8)
    assert first.fingerprint() == again.fingerprint()
    assert [e.answer for e in first.eval] == [e.answer for e in again.eval]
    first.train.clear()  # load hands out copies: the cache is untouched
    assert len(task.load(7).train) == TRAIN_SIZE
    assert first.fingerprint() != other.fingerprint()
    same = {question(e) for e in again.train} & {question(e) for e in other.train}
    assert len(same) < TRAIN_SIZE // 10
    assert again.eval[0].messages[0] != other.eval[0].messages[0]  # another world


def test_no_question_shared_between_splits(data: TaskData) -> None:
    texts = {s: [normalize_text(question(e)) for e in getattr(data, s)] for s in SPLITS}
    for split, questions in texts.items():
        assert len(questions) == len(set(questions)), f"duplicate question in {split}"
    assert not set(texts["train"]) & set(texts["validation"])
    assert not set(texts["train"]) & set(texts["eval"])
    assert not set(texts["validation"]) & set(texts["eval"])


def test_eval_templates_held_out(data: TaskData) -> None:
    used = {s: {e.meta["template"] for e in getattr(data, s)} for s in SPLITS}
    eval_pool = {tid for pool in QUESTION_POOLS["eval"].values() for tid, _ in pool}
    train_pool = {tid for pool in QUESTION_POOLS["train"].values() for tid, _ in pool}
    assert not eval_pool & train_pool
    assert used["eval"] <= eval_pool and len(used["eval"]) == len(eval_pool)
    assert used["train"] | used["validation"] <= train_pool
    assert len(used["train"]) == len(train_pool)
    assert 0.3 <= len(eval_pool) / (len(eval_pool) + len(train_pool)) <= 0.4


@pytest.mark.parametrize("split", SPLITS)
def test_flaws_and_intents_balanced(data: TaskData, split: str) -> None:
    examples = getattr(data, split)
    flaws = Counter(e.meta["flaw"] for e in examples)
    assert set(flaws) == set(FLAWS)
    for flaw in FLAWS:
        assert 0.20 <= flaws[flaw] / len(examples) <= 0.30, flaws
    assert {e.meta["intent"] for e in examples} == set(INTENTS)
    assert len({e.meta["flaw"] for e in examples[:12]}) >= 3  # shuffled, not in blocks


def test_no_single_token_separates_chosen_from_rejected(data: TaskData) -> None:
    pairs = items(data, "eval", "train")
    chosen_only: Counter[str] = Counter()
    rejected_only: Counter[str] = Counter()
    for e in pairs:
        chosen, rejected = tokens(e.answer), tokens(e.rejected or "")
        chosen_only.update(chosen - rejected)
        rejected_only.update(rejected - chosen)
    # "the reply with t is chosen" (or "...is rejected"); both or neither = a coin flip
    accuracy = {t: 0.5 + abs(chosen_only[t] - rejected_only[t]) / (2 * len(pairs))
                for t in chosen_only | rejected_only}
    best = max(accuracy, key=accuracy.__getitem__)
    assert accuracy[best] <= 0.90, f"token {best!r} separates {accuracy[best]:.3f} of pairs"
    assert accuracy[best] > 0.55  # the check itself sees something


def test_length_does_not_separate(data: TaskData) -> None:
    pairs = items(data, "eval", "train")
    for size in (word_count, len):
        hits = [1.0 if size(e.answer) < size(e.rejected) else
                0.5 if size(e.answer) == size(e.rejected) else 0.0 for e in pairs]
        assert sum(hits) / len(pairs) <= 0.90, (size, sum(hits) / len(pairs))
    shorter = Counter(e.meta["flaw"] for e in pairs
                      if word_count(e.rejected or "") < word_count(e.answer))
    assert shorter["rude"] > 0 and shorter["evasive"] > 0 and shorter["wrong"] > 0


def test_facts_where_they_belong(data: TaskData) -> None:
    for e in items(data):
        fact, flaw = e.meta["fact"], e.meta["flaw"]
        assert fact in e.messages[0]["content"], e.messages[0]["content"]
        assert fact in e.answer, e.answer
        assert states_fact(e.answer, fact)
        if flaw in ("rude", "padded"):
            assert fact in e.rejected and states_fact(e.rejected, fact), e.rejected
        else:
            assert not states_fact(e.rejected, fact), e.rejected
        if flaw == "wrong":
            wrong = e.meta["wrong_fact"]
            assert wrong in e.rejected and normalize_text(wrong) != normalize_text(fact)


def test_reply_styles(data: TaskData) -> None:
    examples = items(data)
    assert all(word_count(e.answer) <= CONCISE_WORDS for e in examples)
    greeted = [bool(tokens(e.answer) & set(POLITE_WORDS)) for e in examples]
    assert 0.2 < sum(greeted) / len(greeted) < 0.8  # chosen replies often lack pleasantries
    for flaw in ("wrong", "evasive", "padded"):
        rejected = [e.rejected for e in examples if e.meta["flaw"] == flaw]
        share = sum(bool(tokens(r) & set(POLITE_WORDS)) for r in rejected) / len(rejected)
        assert share > 0.3, (flaw, share)
    for e in examples:
        if e.meta["flaw"] == "padded":
            assert word_count(e.rejected) > CONCISE_WORDS + 5
            assert len(re.findall(r"[.!?](\s|$)", e.rejected)) >= 4, e.rejected
    rude = [e.rejected for e in examples if e.meta["flaw"] == "rude"]
    assert len(set(rude)) > 0.9 * len(rude)


def test_rude_lexicon_covers_generator_and_more(data: TaskData) -> None:
    for e in items(data):
        assert judge(e.answer, e)["polite"] == 1.0, e.answer
        assert (judge(e.rejected, e)["polite"] == 0.0) == (e.meta["flaw"] == "rude"), e.rejected
    generated = " ".join(bank.RUDE).lower()
    for word in ("stupid", "idiot", "whatever", "not my problem", "read the"):
        assert RUDE_MARKERS.search(f"It's $5, {word}.")
    assert not any(w in generated for w in ("stupid", "idiot", "moron", "google it"))


def test_judge_prefers_chosen_on_eval_pairs(data: TaskData) -> None:
    wins = [prefer(e.answer, e.rejected, e) for e in data.eval]
    assert sum(wins) / len(wins) >= 0.95
    for flaw in FLAWS:
        flawed = [w for w, e in zip(wins, data.eval, strict=True) if e.meta["flaw"] == flaw]
        assert sum(flawed) / len(flawed) >= 0.9, flaw
    e = data.eval[0]
    assert prefer(e.rejected, e.answer, e) == 0.0 and prefer(e.answer, e.answer, e) == 0.5


@pytest.mark.parametrize(("reply", "fact"), [
    ("It costs 49 dollars.", "$49"), ("Forty-nine bucks.", "$49"), ("That's $49.00.", "$49"),
    ("49 USD", "$49"), ("five working days", "5 business days"),
    ("within 5 days", "5 business days"), ("a 2-year warranty", "2 years"),
    ("24 months of cover", "2 years"), ("two weeks", "14 days"), ("a 30-day window", "30 days"),
    ("from 8 a.m. until 6 p.m.", "8am to 6pm"), ("08:00-18:00", "8am to 6pm"),
    ("up to five devices", "5 devices"),
    ("Open Settings, then Security, then tap Reset password.",
     "Settings > Security > Reset password"),
    ("Account → Login and Security → Change password",
     "Account > Login & Security > Change password"),
])
def test_fact_matching_is_lenient_about_wording(reply: str, fact: str) -> None:
    assert states_fact(reply, fact), canonical(reply)


@pytest.mark.parametrize(("reply", "fact"), [
    ("It costs $499.", "$49"), ("15 business days", "5 business days"),
    ("8am to 5pm", "8am to 6pm"), ("Security > Settings > Reset password",
                                   "Settings > Security > Reset password"),
    ("3 years", "2 years"),
])
def test_fact_matching_rejects_other_values(reply: str, fact: str) -> None:
    assert not states_fact(reply, fact)


def test_judge_on_hand_written_replies() -> None:
    example = example_for("$49")
    good = judge("The Aero Kettle is 49 dollars. Happy to help!", example)
    assert good == {"correct": 1.0, "polite": 1.0, "concise": 1.0, "answered": 1.0, "score": 1.0}
    rude = judge("It's $49, obviously. Read the product page next time.", example)
    assert rude["polite"] == 0.0 and rude["correct"] == 1.0 and rude["score"] == 0.75
    assert judge("$49. Are you stupid?", example)["polite"] == 0.0
    assert judge("THE PRICE IS $49, FRIEND.", example)["polite"] == 0.0  # shouting
    assert judge("It's $49; happy to help with whatever you need.", example)["polite"] == 1.0
    long = judge("Thank you so much for your question about our products. " * 12
                 + "The Aero Kettle costs $49.", example)
    assert long["correct"] == 1.0 and long["concise"] < 0.2 and long["score"] < 0.85
    evasive = judge("I'm not sure, please check our website or contact sales.", example)
    assert evasive["correct"] == 0.0 and evasive["answered"] == 0.0 and evasive["score"] == 0.5
    assert judge("It's $52, thanks for asking!", example)["correct"] == 0.0
    hedged = judge("It's either $49 or $52.", example_for("$49", wrong="$52"))
    assert hedged["correct"] == 0.0
    assert judge("", example)["score"] == 0.5  # polite and short, but says nothing
    assert 0.0 < judge("word " * 80 + "$49", example)["concise"] < 1.0


def test_score_generation_and_extra_scores(data: TaskData) -> None:
    task = PrefsTask()
    for e in data.eval[:40]:
        assert task.score_generation(e.answer, e) == (e.answer, True)
        assert task.score_generation(e.rejected, e)[1] == (e.meta["flaw"] in ("rude", "padded"))
        assert task.judge(e.answer, e) == 1.0 > task.judge(e.rejected, e)
    example = example_for("$49")
    assert task.score_generation("Obviously $49, idiot. " + "Whatever. " * 50, example)[1] is False
    scores = task.extra_scores("Sure, it's $49.", example)
    assert scores == {"judge_score": 1.0, "judge_correct": 1.0, "judge_polite": 1.0,
                      "judge_concise": 1.0, "judge_answered": 1.0}
    assert task.extra_scores("Please contact sales.", example)["judge_correct"] == 0.0
