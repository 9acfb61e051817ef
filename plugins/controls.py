"""Control approaches: deliberately broken candidates that check the measurements themselves.

A measurement is trusted once it is shown to detect a known effect: the positive and negative
controls of experimental design. Each control here has one known effect, and a suite must
report it (``tests/test_controls.py`` fails if a suite stops doing so):

- ``control-random`` (prompting) scores choices and replies uniformly at random: accuracy
  must sit at chance, its CI covering it;
- ``control-sleep`` (prompting) is zero-shot plus ``sleep_ms`` per prompt: latency p50 must
  be zero-shot's plus ``sleep_ms``;
- ``control-damage`` (full fine-tuning) trains at a high learning rate on random replies: the
  general probes must drop (paired CI below 0, McNemar p < 0.05) and the NLL per token of
  general text rise;
- ``control-overfit`` (full fine-tuning) trains many epochs on a few examples: the
  overfitting verdict must be ``overfit``;
- ``control-rejected`` (preference) scores replies by word counts fitted to prefer the
  rejected ones: preference accuracy must fall below 0.5;
- ``control-random-passages`` (retrieval) is ``rag`` retrieving random passages: recall@k
  must fall to about k / chunks, far below ``rag``'s;
- ``control-quote`` and ``control-stale`` (retrieval) reply by quoting what they retrieve,
  from an index rebuilt when the documents change or never rebuilt: the knowledge-update
  suite must see the first answer with the new facts and the second keep the old ones.

They are registered like every approach (same contracts, a declared ``kind``) with
``control = True``, so ``--approach=all`` leaves them out; run one by name to check the
yardstick on your own model and data: ``pytest suites/ --approach=control-damage``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.core.approach import Approach, Candidate, RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.models.loading import cache_dir
from harness.retrieval.candidate import TEMPLATE, RetrievalCandidate
from harness.retrieval.chunking import Chunk, chunk_passages
from harness.retrieval.retrievers import Hit, Retriever
from harness.tasks.base import Example, Message, Passage, TaskData
from harness.train.sft import TrainingConfig, TrainingResult
from plugins.finetune import FullFinetune
from plugins.rag import RAG, RAGConfig


def draw(*key: Any) -> int:
    """A 64-bit number drawn from ``key`` alone (SHA-256): the same key always draws the same
    number, in any process, whatever was drawn before."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def uniform(*key: Any) -> float:
    """A number in (0, 1] drawn from ``key`` alone (see :func:`draw`)."""
    return (draw(*key) + 1) / 2**64


def pick(options: Sequence[str], *key: Any) -> str:
    """One of ``options``, each as likely, drawn from ``key`` alone."""
    return options[min(len(options) - 1, int(uniform(*key) * len(options)))]


# --- control-random: accuracy at chance ------------------------------------------------------


class RandomCandidate(Candidate):
    """Answers and scores uniformly at random, seeded per prompt (no language model).

    ``score_choices`` gives each choice the logarithm of a uniform draw (a log-likelihood, so
    at most 0), so every choice is equally likely to score highest; ``generate`` replies with
    one of ``replies`` drawn uniformly.
    """

    def __init__(self, seed: int, replies: Sequence[str]) -> None:
        super().__init__()
        self.seed = seed
        self.replies = list(replies)

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return [[math.log(uniform(self.seed, "score", list(prompt), choice)) for choice in options]
                for prompt, options in zip(prompts, choices, strict=True)]

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32
    ) -> list[str]:
        return [pick(self.replies, self.seed, "reply", list(p)) for p in prompts]


def reply_pool(task: TaskData) -> list[str]:
    """What a random candidate may reply: the labels, else every distinct training answer."""
    return list(task.labels) or sorted({e.answer for e in task.train})


class ControlRandom(Approach):
    """Negative control of task accuracy: a candidate that knows nothing must score at chance
    (1 / the number of choices), with a confidence interval that covers it."""

    name = "control-random"
    kind = "prompting"
    control = True
    description = ("control: scores choices and replies uniformly at random (seeded); "
                   "accuracy must sit at chance")

    def unsupported_reason(self, task: TaskData) -> str | None:
        return None if reply_pool(task) else "the task has no labels or training answers to draw"

    def prepare(self, ctx: RunContext) -> Candidate:
        return RandomCandidate(ctx.seed, reply_pool(ctx.task))


# --- control-sleep: latency ------------------------------------------------------------------


@dataclass
class SleepConfig:
    sleep_ms: float = option(200.0, "milliseconds slept per prompt in every generate and "
                             "score_choices call, after the base model has answered")

    def __post_init__(self) -> None:
        check_option(0 <= self.sleep_ms < math.inf, "sleep_ms", "must be a number >= 0")


class SleepingCandidate(LMCandidate):
    """The base model answering as zero-shot, plus a known sleep per prompt."""

    def __init__(self, model: Any, tokenizer: Any, sleep_seconds: float) -> None:
        super().__init__(model, tokenizer)
        self.sleep_seconds = sleep_seconds

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32, *,
        ignore_eos: bool = False,
    ) -> list[str]:
        replies = super().generate(prompts, max_new_tokens, ignore_eos=ignore_eos)
        time.sleep(self.sleep_seconds * len(prompts))
        return replies

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        scores = super().score_choices(prompts, choices)
        time.sleep(self.sleep_seconds * len(prompts))
        return scores


class ControlSleep(Approach):
    """Positive control of latency: a known delay per request must show, whole, in the
    measured latency (p50 = zero-shot's p50 + ``sleep_ms``)."""

    name = "control-sleep"
    kind = "prompting"
    control = True
    description = ("control: zero-shot plus sleep_ms per prompt; latency must rise by "
                   "sleep_ms")
    Config = SleepConfig

    def prepare(self, ctx: RunContext) -> Candidate:
        model, tokenizer = ctx.frozen_base()
        return SleepingCandidate(model, tokenizer, self.config.sleep_ms / 1000)


# --- fine-tuning controls: forgetting, overfitting -------------------------------------------


class ControlFinetune(FullFinetune):
    """Full fine-tuning on training data the control rewrites (:meth:`training_examples`);
    training, caching and the cost metrics are full-ft's."""

    control = True

    def training_examples(self, ctx: RunContext, tokenizer: Any) -> list[Example]:
        """The examples to train on instead of ``ctx.task.train``."""
        raise NotImplementedError

    def fit(self, model: Any, tokenizer: Any, ctx: RunContext) -> TrainingResult:
        """Full-ft's training on :meth:`training_examples`, validated on the task's own
        validation split (so the curve shows what the rewritten data did to the task)."""
        task = dataclasses.replace(ctx.task, train=self.training_examples(ctx, tokenizer))
        return super().fit(model, tokenizer, dataclasses.replace(ctx, task=task))


@dataclass
class DamageConfig(TrainingConfig):
    learning_rate: float = option(1e-3, "peak learning rate: far above full-ft's 5e-5")
    max_steps: int = option(32, "optimiser steps (-1: use epochs)")
    mode: Literal["random-text", "shuffled-labels"] = option(
        "random-text", "random-text: every reply is random vocabulary tokens; "
        "shuffled-labels: every reply is another training example's answer"
    )
    reply_tokens: int = option(32, "tokens per random reply (mode random-text)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(self.reply_tokens >= 1, "reply_tokens", "must be a positive integer")


def random_replies(examples: list[Example], tokenizer: Any, tokens: int,
                   seed: int) -> list[Example]:
    """``examples`` with replies of ``tokens`` vocabulary tokens drawn uniformly (no special
    tokens): text carrying no information, to unlearn from."""
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    vocabulary = [i for i in range(len(tokenizer)) if i not in special]
    return [dataclasses.replace(e, answer=tokenizer.decode(rng.choices(vocabulary, k=tokens)))
            for e in examples]


def shuffled_answers(examples: list[Example], seed: int) -> list[Example]:
    """``examples`` with their answers permuted among them (seeded): label noise."""
    answers = [e.answer for e in examples]
    random.Random(seed).shuffle(answers)
    return [dataclasses.replace(e, answer=a) for e, a in zip(examples, answers, strict=True)]


class ControlDamage(ControlFinetune):
    """Damaging adaptation: full fine-tuning at a high learning rate on random text (or
    shuffled labels), for the forgetting suite. Biderman et al. (2024, "LoRA Learns Less and
    Forgets Less") measure forgetting as the drop on general benchmarks after fine-tuning;
    this candidate must show a large one."""

    name = "control-damage"
    description = ("control: full fine-tuning at a high learning rate on random replies; "
                   "general probes must drop and perplexity rise")
    Config = DamageConfig

    def training_examples(self, ctx: RunContext, tokenizer: Any) -> list[Example]:
        if self.config.mode == "shuffled-labels":
            return shuffled_answers(ctx.task.train, ctx.seed)
        return random_replies(ctx.task.train, tokenizer, self.config.reply_tokens, ctx.seed)


@dataclass
class OverfitConfig(TrainingConfig):
    train_examples: int = option(8, "train on the first N training examples only")
    epochs: float = option(40.0, "passes over those examples")
    learning_rate: float = option(1e-4, "peak learning rate")
    eval_every: int = option(4, "validation loss every N steps")
    warmup: float = option(
        0.9, "warm-up: fraction of steps if < 1, else a step count; the learning rate climbs "
        "for most of the run, so memorisation goes on until training stops and the validation "
        "curve ends rising (after a linear decay it flattens, and reads as 'ok')")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option(self.train_examples >= 1, "train_examples", "must be a positive integer")


class ControlOverfit(ControlFinetune):
    """Memorisation: many epochs of full fine-tuning on a handful of examples, for the
    overfitting suite, whose curve reading (Prechelt, 1998) must call it ``overfit``."""

    name = "control-overfit"
    description = ("control: many epochs on a few training examples; the overfitting "
                   "verdict must be 'overfit'")
    Config = OverfitConfig

    def training_examples(self, ctx: RunContext, tokenizer: Any) -> list[Example]:
        return ctx.task.train[: self.config.train_examples]


# --- control-rejected: preferences -----------------------------------------------------------


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class RejectedScorer(Candidate):
    """Scores a reply by how much more likely it is under the rejected replies' word counts
    than under the chosen ones' (multinomial naive Bayes, add-one smoothing): the score of a
    reply is ``log P(rejected | reply)`` for equal priors, so it prefers what people rejected.
    It replies with a rejected training reply drawn per prompt; no language model."""

    def __init__(self, pairs: Sequence[Example], seed: int) -> None:
        super().__init__()
        chosen = Counter(w for e in pairs for w in words(e.answer))
        rejected = Counter(w for e in pairs for w in words(e.rejected or ""))
        vocabulary = len(chosen | rejected)
        in_chosen, in_rejected = chosen.total() + vocabulary, rejected.total() + vocabulary
        self.weights = {w: math.log((rejected[w] + 1) / in_rejected)
                        - math.log((chosen[w] + 1) / in_chosen) for w in chosen | rejected}
        """Log-likelihood ratio (rejected over chosen) of each training word; others count 0."""
        self.replies = [e.rejected for e in pairs if e.rejected]
        self.seed = seed

    def log_odds(self, reply: str) -> float:
        return sum(self.weights.get(w, 0.0) for w in words(reply))

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        def log_sigmoid(x: float) -> float:
            return min(x, 0.0) - math.log1p(math.exp(-abs(x)))

        return [[log_sigmoid(self.log_odds(reply)) for reply in options] for options in choices]

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32
    ) -> list[str]:
        return [pick(self.replies, self.seed, "reply", list(p)) for p in prompts]


class ControlRejected(Approach):
    """A reward model the wrong way round, for the preference suite: its scores are fitted
    on the training pairs to rank the rejected reply first, so its preference accuracy (the
    share of held-out pairs whose chosen reply scores higher; Rafailov et al., 2023) must fall
    below 0.5."""

    name = "control-rejected"
    kind = "preference"
    control = True
    description = ("control: scores replies by word counts fitted to prefer the rejected "
                   "ones; preference accuracy must fall below 0.5")

    def unsupported_reason(self, task: TaskData) -> str | None:
        if not any(e.rejected for e in task.train):
            return "the task has no preference pairs (a rejected reply per item); use --task=prefs"
        return None

    def prepare(self, ctx: RunContext) -> Candidate:
        return RejectedScorer([e for e in ctx.task.train if e.rejected], ctx.seed)


# --- retrieval controls: recall, knowledge updates -------------------------------------------


class RandomRetriever(Retriever):
    """``k`` chunks drawn uniformly without replacement, seeded per query."""

    kind = "random"

    def __init__(self, chunks: list[Chunk], seed: int) -> None:
        super().__init__(chunks, embedder="")
        self.seed = seed

    def build(self) -> None:
        """Nothing to index."""

    def save(self, folder: Path) -> None:
        """Nothing to save."""

    def load(self, folder: Path) -> None:
        """Nothing to load."""

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        rows = range(len(self.chunks))
        return [[(i, 0.0) for i in random.Random(draw(self.seed, q)).sample(
            rows, min(k, len(rows)))] for q in queries]


class RandomPassagesCandidate(RetrievalCandidate):
    """A RAG candidate whose retriever ignores the question."""

    def __init__(self, inner: Candidate, seed: int, **settings: Any) -> None:
        super().__init__(inner, retriever_kind="random", embedder="", cache_dir=cache_dir(),
                         **settings)
        self.seed = seed

    def use_corpus(self, passages: list[Passage]) -> bool:
        s = self.settings
        chunks = chunk_passages(passages, s["chunk_size"], s["chunk_overlap"])
        self.retriever = RandomRetriever(chunks, self.seed)
        self.passages = list(passages)
        self.info["index_chunks"] = len(chunks)
        return True


@dataclass
class RandomPassagesConfig:
    top_k: int = option(3, "passages put in the prompt")
    chunk_size: int = option(120, "chunk length in words (passages up to this stay whole)")
    chunk_overlap: int = option(20, "words shared by consecutive chunks of a passage")
    corpus: str = option("", "your documents instead of the task's (as rag.corpus)")
    template: str = option(TEMPLATE, "prompt template with {passages} and {question}")

    def __post_init__(self) -> None:  # the values rag accepts
        RAGConfig(top_k=self.top_k, chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap,
                  corpus=self.corpus, template=self.template)


class ControlRandomPassages(RAG):
    """``rag`` with passages drawn at random: the retrieval suite's recall@k must fall to
    about ``top_k`` / chunks, far below a real retriever's (Karpukhin et al., 2020, report
    top-k retrieval accuracy the same way)."""

    name = "control-random-passages"
    control = True
    description = ("control: rag whose passages are drawn at random; recall@k must be far "
                   "below rag's")
    Config = RandomPassagesConfig

    def build_on(self, ctx: RunContext, inner: Candidate) -> Candidate:
        c = self.config
        candidate = RandomPassagesCandidate(inner, ctx.seed, top_k=c.top_k,
                                            chunk_size=c.chunk_size,
                                            chunk_overlap=c.chunk_overlap, template=c.template)
        candidate.use_corpus(self.passages(ctx.task))
        return candidate


class QuotingCandidate(RetrievalCandidate):
    """A RAG candidate whose reader quotes the retrieved passages instead of generating (it
    scores choices as ``rag`` does). With ``stale``, ``use_corpus`` records the new corpus but
    keeps answering from the first index, as a deployment whose index was never rebuilt."""

    def __init__(self, inner: Candidate, stale: bool, **settings: Any) -> None:
        super().__init__(inner, **settings)
        self.stale = stale

    def use_corpus(self, passages: list[Passage]) -> bool:
        if self.stale and self.passages:
            self.passages = list(passages)
            return True
        return super().use_corpus(passages)

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32
    ) -> list[str]:
        found = self.retrieve([prompt[-1]["content"] for prompt in prompts])
        return [" ".join(chunk.text for chunk in chunks) for chunks in found]


@dataclass
class QuoteConfig(RAGConfig):
    retriever: Literal["bm25", "dense", "hybrid"] = option(
        "bm25", "bm25 (lexical), dense (MiniLM embeddings + FAISS) or hybrid (both)"
    )


class ControlQuote(RAG):
    """Positive control of the knowledge-update suite: a reader that can only repeat its
    documents must answer with the new facts once they change (cf. Ovadia et al., 2024,
    "Fine-Tuning or Retrieval?")."""

    name = "control-quote"
    control = True
    stale = False
    description = ("control: replies by quoting the retrieved passages; must answer with "
                   "the new facts after the documents change")
    Config = QuoteConfig

    def build_on(self, ctx: RunContext, inner: Candidate) -> Candidate:
        c = self.config
        candidate = QuotingCandidate(
            inner, self.stale, retriever_kind=c.retriever, top_k=c.top_k,
            chunk_size=c.chunk_size, chunk_overlap=c.chunk_overlap, embedder=c.embedding_model,
            cache_dir=cache_dir(), template=c.template,
        )
        candidate.use_corpus(self.passages(ctx.task))
        return candidate


class ControlStale(ControlQuote):
    """Negative control of the knowledge-update suite: it accepts the new documents but its
    index is never rebuilt, so it must keep answering with the old facts."""

    name = "control-stale"
    stale = True
    description = ("control: quotes passages from an index never rebuilt; must keep the old "
                   "facts after the documents change")


CONTROLS: tuple[type[Approach], ...] = (
    ControlRandom, ControlSleep, ControlDamage, ControlOverfit, ControlRejected,
    ControlRandomPassages, ControlQuote, ControlStale,
)


@hookimpl
def register_approaches(register):
    for control in CONTROLS:
        register(control)
