"""Task data types shared by built-in tasks, user data files and the suites.

A task yields a :class:`TaskData`: train / validation / eval lists of :class:`Example`.
Every example is a prompt conversation (chat messages ending with a user turn) plus the
reference answer; classification tasks also list the allowed ``choices`` so candidates can be
scored by log-likelihood (the lm-eval "multiple choice" protocol) as well as by free generation.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""


@dataclass(frozen=True)
class Example:
    """One evaluation or training item.

    Attributes:
        id: stable identifier, unique within the task.
        messages: the prompt conversation; the last message is the user's turn.
        answer: the reference reply (the label text for classification).
        choices: allowed answers for constrained scoring; empty for open generation.
        rejected: a dispreferred reply, for preference data (DPO, reward models).
        meta: free-form tags (domain, hard-case type, source line...) used in reports.
    """

    id: str
    messages: tuple[Message, ...]
    answer: str
    choices: tuple[str, ...] = ()
    rejected: str | None = None
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def source(self) -> str:
        """Where the item came from, for messages and tables: ``file:line`` for users' data
        (``meta["source"]``, set by :mod:`harness.data.records`), else its id."""
        return self.meta.get("source", self.id)

    @property
    def prompt_text(self) -> str:
        """The user-visible prompt text (all non-system turns), used for overlap checks."""
        return "\n".join(m["content"] for m in self.messages if m["role"] != "system")

    def to_json(self) -> dict:
        """A JSON-serialisable dict (used for hashing and storage)."""
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """One document of a task's knowledge corpus (what retrieval searches)."""

    id: str
    title: str
    text: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TaskData:
    """The splits of one task, ready for approaches and suites."""

    name: str
    train: list[Example]
    validation: list[Example]
    eval: list[Example]
    labels: tuple[str, ...] = ()
    """For classification tasks, the label set (same as every example's ``choices``)."""
    corpus: list[Passage] = field(default_factory=list)
    """The documents questions are about (knowledge tasks); empty for other tasks."""
    updated_corpus: list[Passage] = field(default_factory=list)
    """A second version of ``corpus`` in which some facts changed (knowledge updatability)."""
    update_eval: list[Example] = field(default_factory=list)
    """Eval questions whose answers differ between the two corpus versions: ``answer`` is the
    new answer, ``meta["old_answer"]`` the old one."""
    unlabeled: list[Example] = field(default_factory=list)
    """Training prompts beyond the budget's, answers removed: inputs an approach may label
    itself (sequence-level distillation's extra inputs). Never scored, and not part of
    :meth:`fingerprint` (an approach that reads them hashes what it read)."""
    scoring: str = ""
    """How the task is scored and why, for users' data (``harness.data.scoring``), e.g.
    "scored as classification over 2 labels (negative, positive)"; stored with every run and
    printed in the session summary. Empty for built-in tasks."""

    def fingerprint(self) -> str:
        """SHA-256 over every example and passage (``unlabeled`` apart): the data hash
        recorded as provenance."""
        digest = hashlib.sha256()
        for split in ("train", "validation", "eval", "corpus", "updated_corpus", "update_eval"):
            for item in getattr(self, split):
                digest.update(split.encode())
                digest.update(json.dumps(item.to_json(), sort_keys=True).encode())
        return digest.hexdigest()

    def subset(self, train: int | None, validation: int | None, eval: int | None) -> TaskData:
        """The first ``n`` items of each split (``None`` keeps the split whole).

        Tasks return their splits already shuffled (seeded), so a prefix is a random sample
        and smaller budgets are nested inside larger ones.
        """

        def head(items: list[Example], n: int | None) -> list[Example]:
            return list(items if n is None else items[:n])

        return TaskData(
            name=self.name,
            train=head(self.train, train),
            validation=head(self.validation, validation),
            eval=head(self.eval, eval),
            labels=self.labels,
            corpus=self.corpus,
            updated_corpus=self.updated_corpus,
            update_eval=head(self.update_eval, eval),
            unlabeled=[replace(e, answer="", rejected=None)
                       for e in self.train[len(head(self.train, train)):]],
            scoring=self.scoring,
        )


_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation and collapse white space (SQuAD-style normalisation)."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def match_choice(generated: str, choices: Sequence[str]) -> str | None:
    """The choice a free-form generation names, or ``None`` if it names none.

    The earliest choice mentioned as whole words in the normalised text wins, so
    "Negative. The review complains..." maps to "negative" even if "positive" appears later.
    """
    text = f" {normalize_text(generated)} "
    best: tuple[int, str] | None = None
    for choice in choices:
        position = text.find(f" {normalize_text(choice)} ")
        if position >= 0 and (best is None or position < best[0]):
            best = (position, choice)
    return None if best is None else best[1]


OPEN_METRICS = ("exact_match", "f1", "rouge_l", "chrf", "bleu", "semantic_similarity",
                "ref_logprob")
"""The per-item scores every free reply gets (:mod:`harness.measure.text_metrics` computes
them; named here, where a task's headline is checked, which that module imports)."""
DEFAULT_OPEN_METRIC = "f1"
"""An open task's headline metric unless the user or the task chooses another: token F1 gives
partial credit, is cheap and needs no model, and is what SQuAD-style reports lead with."""
HEADLINE_METRICS = ("accuracy", "gen_accuracy", *OPEN_METRICS, "llm_judge_score")
"""Metrics a task's headline may be (``--set task.metric=NAME``): per-item scores, so candidates
compare paired on them. ``accuracy`` needs answer choices; the others score free replies
(:mod:`harness.measure.text_metrics`; ``llm_judge_score`` needs ``--judge``)."""
CHOICE_HEADLINES = ("accuracy", "gen_accuracy")
"""The headline metrics a classification task may choose."""


@dataclass
class TaskConfig:
    """Options every task takes (``--set task.NAME=VALUE``, or a data folder's ``task.yaml``)."""

    metric: str | None = field(default=None, metadata={"help": (
        "the headline metric the summary, dashboard and decision report compare candidates on: "
        f"one of {', '.join(HEADLINE_METRICS)}. Default: accuracy for classification, the "
        "task's own score for built-in open tasks that have one (gen_accuracy), else f1 "
        "(token F1); every other metric is still recorded.")})

    def __post_init__(self) -> None:
        from harness.core.overrides import check_option

        if self.metric is not None:
            close = difflib.get_close_matches(self.metric, HEADLINE_METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            check_option(self.metric in HEADLINE_METRICS, "metric",
                         f"{self.metric!r} is not a per-item metric{hint}; choose one of "
                         f"{', '.join(HEADLINE_METRICS)}")


class Task(ABC):
    """A built-in or plugin-provided task: deterministic data plus how to score generations."""

    name: ClassVar[str]
    description: ClassVar[str]
    max_new_tokens: ClassVar[int] = 64
    """How many tokens a candidate may generate when this task is scored by generation."""
    Config: ClassVar[type] = TaskConfig
    """Its options (``--set task.NAME=VALUE``); built-in tasks take only :class:`TaskConfig`'s."""

    def __init__(self, config: TaskConfig | None = None) -> None:
        self.config = config or self.Config()

    def headline_metric(self, data: TaskData) -> str:
        """The metric candidates are compared on: the user's ``task.metric``, else
        ``accuracy`` for classification, ``gen_accuracy`` for an open task that scores replies
        its own way (overrides :meth:`score_generation`), else token F1 (``f1``). Raises
        ``ValueError`` for a choice that does not fit the task."""
        chosen = self.config.metric
        if chosen is None:
            if data.labels:
                return "accuracy"
            own = type(self).score_generation is not Task.score_generation
            return "gen_accuracy" if own else DEFAULT_OPEN_METRIC
        if data.labels and chosen not in CHOICE_HEADLINES:
            raise ValueError(f"--set task.metric={chosen}: task {data.name!r} is scored as "
                             f"classification; its headline can be {' or '.join(CHOICE_HEADLINES)}")
        if not data.labels and chosen == "accuracy":
            raise ValueError(f"--set task.metric=accuracy: task {data.name!r} has free-text "
                             "answers and no choices to score; use gen_accuracy (the task's "
                             "own scoring of replies) or a graded metric such as f1 or chrf")
        return chosen

    @abstractmethod
    def load(self, seed: int) -> TaskData:
        """All splits, generated or read deterministically from ``seed``, already shuffled."""

    def score_generation(self, generated: str, example: Example) -> tuple[str | None, bool]:
        """Map a free generation to a prediction and say whether it is correct.

        Classification tasks map the text to a choice (:func:`match_choice`); open tasks
        compare normalised text with the reference.
        """
        if example.choices:
            predicted = match_choice(generated, example.choices)
            return predicted, predicted == example.answer
        return generated, normalize_text(generated) == normalize_text(example.answer)

    def extra_scores(self, generated: str, example: Example) -> dict[str, float]:
        """Further per-item scores of a generation (e.g. token F1), averaged by the suites."""
        return {}

    def judge(self, reply: str, example: Example) -> float | None:
        """How good a free reply is, for preference tasks (higher is better), by a judge that
        no approach trains against; ``None`` if the task has no such judge."""
        return None
