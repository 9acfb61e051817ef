"""Retrieval-augmented generation (Lewis et al., 2020) over the task's documents or yours.

``rag`` alone wraps the base model (zero-shot prompt plus retrieved passages); composed,
``lora+rag`` (or any approach before ``+rag``) retrieves into that approach's candidate. The
retrievers, index cache and prompt wrapper live in :mod:`harness.retrieval`, so retrieval is
timed and recorded by the harness the same way for every RAG candidate.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

from harness.core.approach import Approach, Candidate, RunContext, option
from harness.core.hookspecs import hookimpl
from harness.core.overrides import check_option
from harness.models.lm_candidate import LMCandidate
from harness.models.loading import cache_dir
from harness.retrieval.candidate import TEMPLATE, RetrievalCandidate
from harness.retrieval.chunking import load_corpus
from harness.retrieval.retrievers import EMBEDDED_EMBEDDER, RETRIEVERS
from harness.tasks.base import Passage, TaskData


@dataclass
class RAGConfig:
    retriever: Literal["bm25", "dense", "hybrid"] = option(
        "hybrid", "bm25 (lexical), dense (MiniLM embeddings + FAISS) or hybrid (both, fused by "
        "reciprocal rank)"
    )
    top_k: int = option(3, "passages put in the prompt")
    chunk_size: int = option(120, "chunk length in words (passages up to this stay whole)")
    chunk_overlap: int = option(20, "words shared by consecutive chunks of a passage")
    corpus: str = option(
        "", "your documents instead of the task's: a folder of .txt/.md files or a JSONL of "
        '{"id", "title", "text"} passages'
    )
    embedding_model: str = option(
        EMBEDDED_EMBEDDER, "sentence-transformers model for dense retrieval: the embedded "
        "all-MiniLM-L6-v2, a local folder or a hub id"
    )
    template: str = option(TEMPLATE, "prompt template with {passages} and {question}")

    def __post_init__(self) -> None:
        check_option(self.retriever in RETRIEVERS, "retriever",
                     f"must be one of {', '.join(RETRIEVERS)}")
        check_option(self.top_k >= 1, "top_k", "must be a positive number of passages")
        check_option(self.chunk_size >= 1, "chunk_size", "must be a positive number of words")
        check_option(0 <= self.chunk_overlap < self.chunk_size, "chunk_overlap",
                     f"must be >= 0 and smaller than chunk_size ({self.chunk_size})")
        check_option(bool(self.embedding_model.strip()), "embedding_model",
                     f"must name a model, e.g. {EMBEDDED_EMBEDDER}")
        check_option(_template_fields(self.template) == {"passages", "question"}, "template",
                     "must contain {passages} and {question} and no other {field} (write {{ "
                     "and }} for literal braces)")


def _template_fields(template: str) -> set[str] | None:
    """The ``{fields}`` of a format string, ``None`` if its braces do not pair up."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        return None


class RAG(Approach):
    name = "rag"
    kind = "retrieval"
    description = "retrieves passages (BM25, dense, hybrid) into the prompt"
    Config = RAGConfig
    builds_on_candidates = True

    def unsupported_reason(self, task: TaskData) -> str | None:
        if task.corpus or self.config.corpus:
            return None
        return (
            f"task {task.name!r} has no document corpus to retrieve from; give one with "
            "--set rag.corpus=PATH (a folder of .txt/.md files or a JSONL of passages)"
        )

    def passages(self, task: TaskData) -> list[Passage]:
        return load_corpus(self.config.corpus) if self.config.corpus else task.corpus

    def prepare(self, ctx: RunContext) -> Candidate:
        model, tokenizer = ctx.frozen_base()
        return self.build_on(ctx, LMCandidate(model, tokenizer))

    def build_on(self, ctx: RunContext, inner: Candidate) -> Candidate:
        c = self.config
        candidate = RetrievalCandidate(
            inner, retriever_kind=c.retriever, top_k=c.top_k, chunk_size=c.chunk_size,
            chunk_overlap=c.chunk_overlap, embedder=c.embedding_model, cache_dir=cache_dir(),
            template=c.template,
        )
        candidate.use_corpus(self.passages(ctx.task))
        return candidate


@hookimpl
def register_approaches(register):
    register(RAG)
