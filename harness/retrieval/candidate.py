"""A candidate that retrieves passages into every prompt before another candidate answers it.

Retrieval-augmented generation (Lewis et al., 2020) as a wrapper: the inner candidate (the
base model with a prompt, or a fine-tuned one, for ``lora+rag``) is unchanged; this class puts
the top-k retrieved chunks before the question in the last user turn and asks for an answer
grounded in them, or a refusal. Because it happens inside ``generate`` and ``score_choices``,
every suite and the lm-eval bridge measure a RAG candidate like any other. Time spent in
retrieval is counted in ``timings["retrieval_seconds"]`` so latency splits into retrieval and
generation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.approach import Candidate
from harness.core.capabilities import decodes_fixed_length
from harness.models.hardware import Precision
from harness.retrieval.chunking import Chunk, chunk_passages
from harness.retrieval.retrievers import Retriever, open_index
from harness.tasks.base import Message, Passage

TEMPLATE = (
    "Answer the question using only the passages below. If they do not contain the answer, "
    "reply \"I don't know.\"\n\n{passages}\n\n{question}"
)
"""How retrieved passages and the original user turn are combined (``{passages}``,
``{question}``)."""


def query_of(content: str) -> str:
    """The retrieval query of a user turn: its last paragraph, where tasks put the question
    (instructions before it would make every query look alike to a dense retriever)."""
    paragraphs = [p.strip() for p in content.split("\n\n") if p.strip()]
    return paragraphs[-1] if paragraphs else content


def format_passages(chunks: Sequence[Chunk]) -> str:
    return "\n".join(
        f"[{n}] {c.title}: {c.text}" if c.title else f"[{n}] {c.text}"
        for n, c in enumerate(chunks, start=1)
    )


class RetrievalCandidate(Candidate):
    """``inner`` answering prompts augmented with the ``top_k`` chunks ``retriever`` finds."""

    def __init__(
        self,
        inner: Candidate,
        *,
        retriever_kind: str,
        top_k: int,
        chunk_size: int,
        chunk_overlap: int,
        embedder: str,
        cache_dir: Path,
        template: str = TEMPLATE,
    ) -> None:
        super().__init__()
        if top_k < 1:
            raise ValueError(f"rag.top_k must be at least 1, got {top_k}")
        if "{passages}" not in template or "{question}" not in template:
            raise ValueError("rag.template must contain {passages} and {question}")
        self.inner = inner
        self.info.update(inner.info)
        self.settings = {"retriever_kind": retriever_kind, "chunk_size": chunk_size,
                         "chunk_overlap": chunk_overlap, "embedder": embedder,
                         "cache_dir": cache_dir}
        self.top_k = top_k
        self.template = template
        self.timings["retrieval_seconds"] = 0.0
        self.retriever: Retriever
        self.passages: list[Passage] = []
        """The corpus version currently indexed."""

    @property
    def model(self) -> Any:  # type: ignore[override]
        return self.inner.model

    def set_precision(self, precision: Precision) -> None:
        super().set_precision(precision)
        self.inner.set_precision(precision)

    @property
    def tokenizer(self) -> Any:  # type: ignore[override]
        return self.inner.tokenizer

    def without_rewriting(self) -> Candidate:
        """The inner candidate answering prompts without retrieved passages (and without
        its own rewriting, if it has any): see ``LMCandidate.without_rewriting``."""
        strip = getattr(self.inner, "without_rewriting", None)
        return strip() if strip is not None else self.inner

    def use_corpus(self, passages: list[Passage]) -> bool:
        """Index ``passages`` (from the cache when this version was indexed before)."""
        s = self.settings
        chunks = chunk_passages(passages, s["chunk_size"], s["chunk_overlap"])
        self.retriever, facts = open_index(s["retriever_kind"], chunks, s["embedder"],
                                           s["cache_dir"])
        self.passages = list(passages)
        self.info.update(facts)
        return True

    def retrieve(self, queries: Sequence[str]) -> list[list[Chunk]]:
        """The top-k chunks for each user turn's text (timed as retrieval)."""
        started = time.perf_counter()
        hits = self.retriever.search([query_of(q) for q in queries], self.top_k)
        self.timings["retrieval_seconds"] += time.perf_counter() - started
        return [[self.retriever.chunks[i] for i, _ in row] for row in hits]

    def augment(self, prompts: Sequence[Sequence[Message]]) -> list[list[Message]]:
        """Each prompt with retrieved passages put before its last user turn's text."""
        for prompt in prompts:
            if not prompt or prompt[-1]["role"] != "user":
                raise ValueError("a prompt must end with a user message")
        found = self.retrieve([p[-1]["content"] for p in prompts])
        augmented = []
        for prompt, chunks in zip(prompts, found, strict=True):
            content = self.template.format(passages=format_passages(chunks),
                                           question=prompt[-1]["content"])
            augmented.append([*prompt[:-1], {"role": "user", "content": content}])
        return augmented

    rewrite_prompts = augment
    """It rewrites prompts (:class:`~harness.core.capabilities.RewritesPrompts`)."""

    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32, *,
        ignore_eos: bool = False,
    ) -> list[str]:
        """The inner candidate's replies to the augmented prompts; ``ignore_eos`` is passed
        on (only when set, so an inner candidate without the keyword still answers)."""
        fixed = {"ignore_eos": True} if ignore_eos else {}
        return self.inner.generate(self.augment(prompts), max_new_tokens, **fixed)

    @property
    def fixed_length_decoding(self) -> bool:
        """Whether ``generate(..., ignore_eos=True)`` works: whether the inner candidate's
        does (:func:`~harness.core.capabilities.decodes_fixed_length`)."""
        return decodes_fixed_length(self.inner)

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return self.inner.score_choices(self.augment(prompts), choices)

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """The inner candidate's score: raw text has no question to retrieve passages for."""
        return self.inner.loglikelihood_rolling(texts)
