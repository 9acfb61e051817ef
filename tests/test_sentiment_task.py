"""Tests for the synthetic review-sentiment task (harness/tasks/sentiment/task.py)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from harness.tasks.base import Example, TaskData, normalize_text
from harness.tasks.sentiment import phrases as bank
from harness.tasks.sentiment import task as sentiment
from harness.tasks.sentiment.task import (
    CASE_SHARES,
    INSTRUCTION,
    LABELS,
    SYSTEM,
    TEMPLATE_POOLS,
    SentimentTask,
    holdout,
)

SPLITS = ("train", "validation", "eval")
CASES = tuple(CASE_SHARES)
NEGATION_CUE = re.compile(r"n't\b|\b(not|no|never|nothing|nobody|hardly|far from)\b", re.I)


@pytest.fixture(scope="module")
def data() -> TaskData:
    return SentimentTask().load(seed=0)


def review(example: Example) -> str:
    """The review text inside the user message."""
    return example.messages[-1]["content"].split("\n\nReview: ", 1)[1]


def words(text: str) -> set[str]:
    return set(normalize_text(text).split())


def facts(domain: str, polarity: str) -> list[str]:
    index = 0 if polarity == "positive" else 1
    return [f.lower() for pair in bank.DOMAINS[domain]["facts"].values() for f in pair[index]]


def polar_phrases(domain: str) -> list[tuple[str, str]]:
    """Every (lower-cased phrase, polarity) of the banks that can appear in a review."""
    out = [(f, "positive") for f in facts(domain, "positive")]
    out += [(f, "negative") for f in facts(domain, "negative")]
    for polarity, pol in (("positive", "pos"), ("negative", "neg")):
        generic = bank.POS_VERDICTS if pol == "pos" else bank.NEG_VERDICTS
        adjectives = bank.POS_ADJ if pol == "pos" else bank.NEG_ADJ
        ends = bank.DOMAINS[domain][f"{pol}_ends"]
        out += [(v.lower(), polarity) for v in (*generic, *ends, *adjectives)]
    return out


def last_polar_phrase(text: str, domain: str) -> str:
    """Polarity of the bank phrase that ends last in ``text`` (the overall verdict)."""
    lowered = text.lower()
    hits = [
        (m.end(), polarity)
        for phrase, polarity in polar_phrases(domain)
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", lowered)
    ]
    assert hits, text
    return max(hits)[1]


def test_task_identity() -> None:
    task = SentimentTask()
    assert task.name == "sentiment"
    assert task.description and "\n" not in task.description
    assert LABELS == ("negative", "positive")


def test_split_sizes(data: TaskData) -> None:
    assert (len(data.train), len(data.validation), len(data.eval)) == (2400, 200, 600)
    assert data.labels == LABELS
    assert data.name == "sentiment"


@pytest.mark.parametrize("split", SPLITS)
def test_labels_exactly_balanced(data: TaskData, split: str) -> None:
    counts = Counter(e.answer for e in getattr(data, split))
    assert counts["positive"] == counts["negative"] == len(getattr(data, split)) // 2


@pytest.mark.parametrize("split", SPLITS)
def test_every_prefix_is_balanced(data: TaskData, split: str) -> None:
    balance = 0
    for n, example in enumerate(getattr(data, split), start=1):
        balance += 1 if example.answer == "positive" else -1
        assert abs(balance) <= 1, f"prefix of {n} items is unbalanced"
    first_40 = Counter(e.answer for e in getattr(data, split)[:40])
    assert first_40["positive"] == first_40["negative"] == 20


@pytest.mark.parametrize("split", SPLITS)
def test_prefix_is_a_mixed_sample(data: TaskData, split: str) -> None:
    head = getattr(data, split)[:100]
    assert {e.meta["case"] for e in head} == set(CASES)
    assert len({e.meta["domain"] for e in head}) >= 5


@pytest.mark.parametrize("split", ["train", "eval"])
def test_cases_and_domains_present(data: TaskData, split: str) -> None:
    items = getattr(data, split)
    assert {e.meta["case"] for e in items} == set(CASES)
    assert len({e.meta["domain"] for e in items}) >= 5
    assert {e.meta["domain"] for e in items} <= set(bank.DOMAINS)


@pytest.mark.parametrize("split", SPLITS)
def test_case_shares_near_target(data: TaskData, split: str) -> None:
    items = getattr(data, split)
    counts = Counter(e.meta["case"] for e in items)
    for case, share in CASE_SHARES.items():
        assert abs(counts[case] / len(items) - share) <= 0.03, (case, counts[case])


@pytest.mark.parametrize("split", SPLITS)
def test_labels_balanced_within_each_case(data: TaskData, split: str) -> None:
    counts = Counter((e.meta["case"], e.answer) for e in getattr(data, split))
    for case in CASES:
        assert abs(counts[(case, "positive")] - counts[(case, "negative")]) <= 1, case


def test_no_review_shared_between_splits(data: TaskData) -> None:
    texts = {s: {normalize_text(review(e)) for e in getattr(data, s)} for s in SPLITS}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["eval"]
    assert not texts["validation"] & texts["eval"]


@pytest.mark.parametrize("split", SPLITS)
def test_no_duplicates_within_split(data: TaskData, split: str) -> None:
    items = getattr(data, split)
    assert len({normalize_text(review(e)) for e in items}) == len(items)
    assert len({e.id for e in items}) == len(items)


def test_eval_templates_held_out(data: TaskData) -> None:
    train = {e.meta["template"] for e in data.train}
    validation = {e.meta["template"] for e in data.validation}
    evaluation = {e.meta["template"] for e in data.eval}
    assert not train & evaluation
    assert not validation & evaluation
    eval_pool = {tid for pool in TEMPLATE_POOLS["eval"].values() for tid, _ in pool}
    train_pool = {tid for pool in TEMPLATE_POOLS["train"].values() for tid, _ in pool}
    assert evaluation <= eval_pool
    assert train | validation <= train_pool
    assert len(train) > 0.9 * len(train_pool)  # the train split really uses its pool


def test_template_pools_are_big_and_split_about_a_third() -> None:
    for case in CASES:
        n_train = sum(len(TEMPLATE_POOLS["train"][(case, lab)]) for lab in ("positive", "negative"))
        n_eval = sum(len(TEMPLATE_POOLS["eval"][(case, lab)]) for lab in ("positive", "negative"))
        assert n_train + n_eval >= 24, case
        assert 0.3 <= n_eval / (n_train + n_eval) <= 0.4, case
    assert holdout(list(range(7))) == {"train": (0, 1, 3, 4, 6), "eval": (2, 5)}


def test_held_out_vocabulary_only_in_eval(data: TaskData) -> None:
    eval_vocab = {w for bank_ in (bank.POS_ADJ, bank.NEG_ADJ) for w in holdout(bank_)["eval"]}
    train_vocab = {w for bank_ in (bank.POS_ADJ, bank.NEG_ADJ) for w in holdout(bank_)["train"]}
    eval_verdicts = [
        v.lower()
        for v in (*holdout(bank.POS_VERDICTS)["eval"], *holdout(bank.NEG_VERDICTS)["eval"])
    ]
    for example in (*data.train, *data.validation):
        assert not words(review(example)) & eval_vocab, review(example)
        assert not any(v in review(example).lower() for v in eval_verdicts), review(example)
    for example in data.eval:
        assert not words(review(example)) & train_vocab, review(example)
    assert sum(bool(words(review(e)) & eval_vocab) for e in data.eval) > 100


def test_same_seed_same_data_other_seed_different() -> None:
    first, again, other = (SentimentTask().load(seed=s) for s in (7, 7, 8))
    assert first.fingerprint() == again.fingerprint()
    assert [review(e) for e in first.eval] == [review(e) for e in again.eval]
    assert first.fingerprint() != other.fingerprint()
    same = sum(review(a) == review(b) for a, b in zip(first.train, other.train, strict=True))
    assert same < len(first.train) // 10


@pytest.mark.parametrize("split", SPLITS)
def test_examples_are_well_formed(data: TaskData, split: str) -> None:
    for i, example in enumerate(getattr(data, split)):
        assert example.id == f"sentiment-{split}-{i:05d}"
        assert example.choices == ("negative", "positive")
        assert example.answer in example.choices
        assert set(example.meta) >= {"case", "domain", "template"}
        assert example.meta["template"].startswith(example.meta["case"] + "-")
        system, user = example.messages
        assert system == {"role": "system", "content": SYSTEM}
        assert user["role"] == "user"
        assert user["content"].startswith(INSTRUCTION + "\n\nReview: ")
        assert review(example).strip() == review(example) and review(example)
    assert "positive" in INSTRUCTION and "negative" in INSTRUCTION and "one word" in INSTRUCTION


def test_negation_items_negate_the_opposite_polarity(data: TaskData) -> None:
    items = [e for e in data.train + data.eval if e.meta["case"] == "negation"]
    for example in items:
        text = review(example)
        assert NEGATION_CUE.search(text), text
        # Any evaluative adjective in a negation item is the negated, opposite-polarity one.
        same = set(bank.POS_ADJ if example.answer == "positive" else bank.NEG_ADJ)
        assert not words(text) & same, text
    # ...and plenty of items do carry such a negated adjective ("not bad at all").
    with_adjective = [e for e in items if words(review(e)) & set(bank.POS_ADJ + bank.NEG_ADJ)]
    assert len(with_adjective) > len(items) // 4


def test_mixed_items_have_both_sides_and_end_on_the_label(data: TaskData) -> None:
    items = [e for e in data.train + data.eval if e.meta["case"] == "mixed"]
    for example in items:
        text, domain = review(example).lower(), example.meta["domain"]
        assert any(f in text for f in facts(domain, "positive")), text
        assert any(f in text for f in facts(domain, "negative")), text
        assert last_polar_phrase(text, domain) == example.answer, text


def test_sarcasm_items_pair_surface_tone_with_opposite_content(data: TaskData) -> None:
    praise = re.compile(
        r"\b(oh|wow|loved|perfect|flawless|treat|well spent|always wanted|bargain|bravo|"
        r"thanks|quality|magic|exactly what|" + "|".join(bank.POS_ADJ) + r")\b",
        re.I,
    )
    complaint = re.compile(
        r"\b(problem|hate|warning|warned|terrible|complaint|ugh|dangerous|"
        r"oh no|annoying|mistake|worst|angry|ruin|ruined|spoiled|furious|blame)\b",
        re.I,
    )
    items = [e for e in data.train + data.eval if e.meta["case"] == "sarcasm"]
    assert {e.answer for e in items} == {"positive", "negative"}
    for example in items:
        text, domain = review(example).lower(), example.meta["domain"]
        own = "negative" if example.answer == "negative" else "positive"
        other = "positive" if own == "negative" else "negative"
        assert any(f in text for f in facts(domain, own)), text
        assert not any(f in text for f in facts(domain, other)), text
        tone = praise if example.answer == "negative" else complaint
        assert tone.search(text), text
    # Spot-check a known sarcastic pattern: praise words around a bad event are negative.
    oh_adj = [e for e in items if re.match(r"Oh (?!no\b)\w+, ", review(e))]
    assert oh_adj and all(e.answer == "negative" for e in oh_adj)


def test_short_and_plain_items(data: TaskData) -> None:
    for example in data.train + data.eval:
        text = review(example)
        if example.meta["case"] == "short":
            assert len(text.split()) <= 6, text
        if example.meta["case"] == "plain":
            other = "negative" if example.answer == "positive" else "positive"
            assert not any(f in text.lower() for f in facts(example.meta["domain"], other)), text


def test_generation_fails_loudly_when_banks_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentiment, "CASE_SHARES", {"short": 1.0})
    monkeypatch.setattr(sentiment, "SPLIT_SIZES", {"train": 2, "validation": 2, "eval": 20000})
    with pytest.raises(RuntimeError, match="could not draw"):
        SentimentTask().load(seed=0)
