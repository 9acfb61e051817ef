"""Synthetic review sentiment classification (positive / negative) with held-out phrasings.

Each item is a short product or service review from one of seven domains (restaurants, hotels,
electronics, mobile apps, books, movies, airlines) labelled ``positive`` or ``negative``. Reviews
are generated from templates filled with domain facts ("the battery died by noon"),
evaluative adjectives and overall verdicts (phrase banks in :mod:`phrases`).

Why it is built this way:

* **Hard cases.** Besides plain reviews, a fixed share of every split is a capability test in
  the spirit of CheckList (Ribeiro et al., 2020, "Beyond Accuracy: Behavioral Testing of NLP
  Models with CheckList"): *negation* ("not bad at all" -> positive), *mixed* reviews where praise
  and complaint both appear and the overall verdict decides, *sarcasm* (praise words around a
  clearly bad event -> negative, and its mirror, the mock complaint about something clearly good
  -> positive) and very *short* reviews. ``meta["case"]`` records the type so reports can break
  accuracy down by capability; labels are balanced within every case type.
* **Held-out phrasings.** Every template pool and every sentiment-vocabulary bank (adjectives,
  verdicts) is split by a fixed rule (every third item is eval-only). Train and validation use
  only the train side; eval uses only the eval side. A model that memorised the training
  templates or words gains nothing on eval, so eval measures generalisation. Domain facts are
  shared, as they are content rather than the phrasing under test.
* **Clean splits.** Review texts are unique across all splits (compared after
  :func:`normalize_text`), labels are exactly balanced per split, and splits are shuffled with
  labels interleaved so any prefix (``TaskData.subset``) is a label-balanced random sample.

Everything is drawn from ``random.Random(seed)``: the same seed always gives the same data.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from string import Formatter
from typing import ClassVar, TypeVar

from harness.tasks.base import Example, Task, TaskData, normalize_text
from harness.tasks.sentiment import phrases as bank

SYSTEM = "You are a careful assistant that classifies the sentiment of customer reviews."
INSTRUCTION = (
    "Classify the sentiment of the following review as positive or negative. "
    "Answer with one word: positive or negative."
)
LABELS: tuple[str, ...] = ("negative", "positive")
SPLIT_SIZES: dict[str, int] = {"train": 2400, "validation": 200, "eval": 600}
CASE_SHARES: dict[str, float] = {
    "plain": 0.35,
    "negation": 0.20,
    "mixed": 0.20,
    "sarcasm": 0.15,
    "short": 0.10,
}
DOMAIN_NAMES: tuple[str, ...] = tuple(bank.DOMAINS)
MAX_ATTEMPTS = 500
"""Draws allowed per item before generation fails (duplicates are redrawn)."""

T = TypeVar("T")
_SIDES = ("train", "eval")
_POLARITY = {"positive": "pos", "negative": "neg"}
_SLOT = re.compile(r"^(pos_adj|neg_adj|pos_fact|neg_fact|pos_verdict|neg_verdict)\d*$")
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def holdout(items: Sequence[T]) -> dict[str, tuple[T, ...]]:
    """Split a bank: items at positions 2, 5, 8, ... are eval-only, the rest are train-side."""
    return {
        "train": tuple(x for i, x in enumerate(items) if i % 3 != 2),
        "eval": tuple(x for i, x in enumerate(items) if i % 3 == 2),
    }


def _build_template_pools() -> dict[str, dict[tuple[str, str], tuple[tuple[str, str], ...]]]:
    """``side -> (case, label) -> ((template_id, template), ...)``; ids number each case pool."""
    pools: dict[str, dict[tuple[str, str], tuple[tuple[str, str], ...]]] = {s: {} for s in _SIDES}
    for case, by_label in bank.TEMPLATES.items():
        offset = 0
        for label in ("positive", "negative"):
            templates = by_label[label]
            numbered = [(f"{case}-{offset + i:02d}", t) for i, t in enumerate(templates)]
            offset += len(templates)
            for side, part in holdout(numbered).items():
                pools[side][(case, label)] = part
    return pools


TEMPLATE_POOLS = _build_template_pools()
"""Template pools per side; eval uses only ``TEMPLATE_POOLS["eval"]`` (never seen in train)."""

_ADJECTIVES = {"pos": holdout(bank.POS_ADJ), "neg": holdout(bank.NEG_ADJ)}
_VERDICTS = {
    side: {
        pol: {
            name: holdout(generic)[side] + holdout(domain[f"{pol}_ends"])[side]
            for name, domain in bank.DOMAINS.items()
        }
        for pol, generic in (("pos", bank.POS_VERDICTS), ("neg", bank.NEG_VERDICTS))
    }
    for side in _SIDES
}


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def render(template: str, domain_name: str, side: str, rng: random.Random) -> str:
    """Fill one template with phrases of ``domain_name`` from the ``side`` ("train"/"eval") banks.

    A capitalised field (``{Pos_fact}``) gets the capitalised value of the same slot; a slot with
    a digit suffix gets a value different from the other slots of its kind, and two facts in one
    review always describe different aspects.
    """
    domain = bank.DOMAINS[domain_name]
    noun = rng.choice(domain["nouns"])
    values: dict[str, str] = {
        "noun": noun,
        "product": f"{rng.choice(('this', 'the'))} {noun}",
        "again": domain["again"],
        "habit": domain["habit"],
    }
    used_aspects: set[str] = set()
    fields = [f for _, f, _, _ in Formatter().parse(template) if f]
    for field in fields:
        key = field.lower()
        if key in values:
            continue
        match = _SLOT.match(key)
        if match is None:
            raise KeyError(f"unknown template slot {field!r} in {template!r}")
        pol, kind = match.group(1).split("_")
        taken = set(values.values())
        if kind == "fact":
            index = 0 if pol == "pos" else 1
            options = [
                (aspect, fact)
                for aspect, facts in domain["facts"].items()
                if aspect not in used_aspects
                for fact in facts[index]
            ]
            aspect, values[key] = rng.choice(options)
            used_aspects.add(aspect)
        else:
            source = _ADJECTIVES[pol][side] if kind == "adj" else _VERDICTS[side][pol][domain_name]
            values[key] = rng.choice([v for v in source if v not in taken])
    filled = {f: _capitalise(values[f.lower()]) if f[0].isupper() else values[f] for f in fields}
    return _ARTICLE.sub(r"\1n ", template.format(**filled))


def case_quotas(n: int) -> list[tuple[str, str, int]]:
    """``(case, label, count)`` for a split of ``n`` items: case shares by largest remainder,
    labels split evenly within each case (odd remainders alternate so totals balance exactly)."""
    if n % 2:
        raise ValueError(f"split size must be even for exact label balance, got {n}")
    raw = {case: n * share for case, share in CASE_SHARES.items()}
    counts = {case: int(value) for case, value in raw.items()}
    by_remainder = sorted(raw, key=lambda c: raw[c] - counts[c], reverse=True)
    for case in by_remainder[: n - sum(counts.values())]:
        counts[case] += 1
    quotas: list[tuple[str, str, int]] = []
    extra_positive = True
    for case, count in counts.items():
        half, odd = divmod(count, 2)
        positive = half + (odd if extra_positive else 0)
        extra_positive ^= bool(odd)
        quotas += [(case, "positive", positive), (case, "negative", count - positive)]
    return quotas


def make_messages(text: str) -> tuple[dict[str, str], ...]:
    """The prompt conversation for one review."""
    return (
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{INSTRUCTION}\n\nReview: {text}"},
    )


class SentimentTask(Task):
    """Binary review sentiment with negation / mixed / sarcasm / short hard cases."""

    name: ClassVar[str] = "sentiment"
    description: ClassVar[str] = (
        "Review sentiment (positive/negative) over 7 domains with negation, mixed, sarcasm and "
        "short hard cases; eval uses held-out templates and vocabulary."
    )

    def load(self, seed: int) -> TaskData:
        """Generate train / validation / eval deterministically from ``seed``."""
        rng = random.Random(seed)
        seen: set[str] = set()
        splits = {
            split: self._generate_split(split, size, rng, seen)
            for split, size in SPLIT_SIZES.items()
        }
        return TaskData(name=self.name, labels=LABELS, **splits)

    def _generate_split(
        self, split: str, size: int, rng: random.Random, seen: set[str]
    ) -> list[Example]:
        """Fill each (case, label) quota with unseen texts; shuffle with labels interleaved."""
        side = "eval" if split == "eval" else "train"
        drawn: dict[str, list[tuple[str, dict[str, str]]]] = {"positive": [], "negative": []}
        for case, label, count in case_quotas(size):
            pool = TEMPLATE_POOLS[side][(case, label)]
            start = rng.randrange(len(DOMAIN_NAMES))
            for k in range(count):
                domain = DOMAIN_NAMES[(start + k) % len(DOMAIN_NAMES)]
                for attempt in range(MAX_ATTEMPTS):
                    if attempt >= MAX_ATTEMPTS // 5:  # this domain looks exhausted: roam
                        domain = rng.choice(DOMAIN_NAMES)
                    template_id, template = rng.choice(pool)
                    text = render(template, domain, side, rng)
                    key = normalize_text(text)
                    if key not in seen:
                        break
                else:
                    raise RuntimeError(
                        f"sentiment: could not draw a new {split} {case}/{label} review after "
                        f"{MAX_ATTEMPTS} attempts ({len(drawn[label])} drawn); banks too small"
                    )
                seen.add(key)
                meta = {"case": case, "domain": domain, "template": template_id}
                drawn[label].append((text, meta))
        positives, negatives = drawn["positive"], drawn["negative"]
        if len(positives) != len(negatives):
            raise RuntimeError(f"sentiment: unbalanced {split} quotas")
        rng.shuffle(positives)
        rng.shuffle(negatives)
        ordered: list[tuple[str, tuple[str, dict[str, str]]]] = []
        for pos, neg in zip(positives, negatives, strict=True):
            pair = [("positive", pos), ("negative", neg)]
            if rng.random() < 0.5:
                pair.reverse()
            ordered += pair
        return [
            Example(
                id=f"sentiment-{split}-{i:05d}",
                messages=make_messages(text),
                answer=label,
                choices=LABELS,
                meta=meta,
            )
            for i, (label, (text, meta)) in enumerate(ordered)
        ]
