"""Splitting passages into overlapping word windows, and reading a user's own corpus.

Fixed-size windows with overlap are the baseline chunker of RAG toolkits (LangChain's and
LlamaIndex's token/word splitters); a window never crosses a passage boundary, so every chunk
keeps the id of the passage it came from (retrieval recall is measured on passage ids).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness.data.records import DataError, Location
from harness.tasks.base import Passage

TEXT_SUFFIXES = (".txt", ".md")
PASSAGES_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Chunk:
    """A window of one passage: what retrievers index and prompts quote."""

    passage_id: str
    title: str
    text: str

    @property
    def indexed_text(self) -> str:
        """Title and text together: titles carry the entity names questions ask about."""
        return f"{self.title}. {self.text}" if self.title else self.text


def chunk_passages(passages: list[Passage], size: int, overlap: int) -> list[Chunk]:
    """Windows of ``size`` words, consecutive windows sharing ``overlap`` words.

    A passage no longer than ``size`` words stays whole; the last window of a passage is
    aligned to its end so no window is a short leftover.
    """
    if size < 1:
        raise ValueError(f"rag.chunk_size must be at least 1 word, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"rag.chunk_overlap must be in [0, chunk_size), got {overlap}")
    chunks: list[Chunk] = []
    for passage in passages:
        words = passage.text.split()
        if len(words) <= size:
            chunks.append(Chunk(passage.id, passage.title, " ".join(words)))
            continue
        step = size - overlap
        starts = [*range(0, len(words) - size, step), len(words) - size]
        chunks += [Chunk(passage.id, passage.title, " ".join(words[s : s + size])) for s in starts]
    return chunks


def _heading(text: str) -> str:
    match = re.search(r"^#+\s*(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def _folder_passages(root: Path) -> list[Passage]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no .txt or .md files found; put one document per file there")
    passages = []
    for path in files:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            name = str(path.relative_to(root))
            passages.append(Passage(name, _heading(text) or path.stem, text))
    return passages


def _jsonl_passages(path: Path) -> list[Passage]:
    passages = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = Location(str(path), number)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise where.error(f"not valid JSON ({error.msg}); write one object per line") from None
        if not isinstance(record, dict):
            raise where.error('expected an object like {"id": ..., "title": ..., "text": ...}')
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise where.error('field "text" is missing or empty; every passage needs its text')
        passages.append(Passage(str(record.get("id", f"line{number}")),
                                str(record.get("title", "")), text.strip()))
    return passages


def load_corpus(spec: str) -> list[Passage]:
    """A user's documents: a folder of .txt/.md files (one passage per file) or a JSONL file
    of ``{"id", "title", "text"}`` objects (``text`` required). Files are only ever read as
    text; any other file type is refused."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (rag.corpus)")
    if path.is_file() and path.suffix.lower() != PASSAGES_SUFFIX:
        raise DataError(f"{path}: unsupported file type '{path.suffix or '(none)'}' for "
                        f"rag.corpus; give a {PASSAGES_SUFFIX} file of passages or a folder "
                        f"of {' or '.join(TEXT_SUFFIXES)} files")
    passages = _folder_passages(path) if path.is_dir() else _jsonl_passages(path)
    if not passages:
        raise DataError(f"{path}: the corpus is empty; add documents with text")
    seen: set[str] = set()
    for passage in passages:
        if passage.id in seen:
            raise DataError(f"{path}: passage id {passage.id!r} appears twice; ids must be unique")
        seen.add(passage.id)
    return passages
