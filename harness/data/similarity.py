"""Near-duplicate prompts: word-shingle sets, MinHash LSH candidates, exact Jaccard.

Follows the near-duplicate detection of Broder (1997, "On the resemblance and containment of
documents") as Lee et al. (2022, "Deduplicating Training Data Makes Language Models Better")
apply it to training data: each text becomes the set of its word n-grams (shingles), MinHash
signatures estimate the Jaccard similarity of two sets, and locality-sensitive hashing over
bands of the signature (``datasketch.MinHashLSH``) finds candidate pairs without comparing
every pair. Candidates are then confirmed with the exact Jaccard similarity of their shingle
sets, so what is reported is exact for every pair LSH proposes. LSH may miss a pair: with
:data:`LSH_BANDS` bands of :data:`LSH_ROWS` rows a pair at Jaccard 0.8 is proposed with
probability 1 - (1 - 0.8^7)^18 = 0.986, at 0.85 with 0.999.

Texts are normalised first (``harness.tasks.base.normalize_text``). Words that every prompt
of the compared data starts or ends with (a shared instruction or answer cue) are left out,
so two items that differ only in their short input are not near-duplicates because of the
template around it. Shingles are hashed with ``zlib.crc32`` (deterministic across processes,
twice as fast as datasketch's default SHA-1; datasketch mixes the values before permuting). One
:class:`PromptIndex` serves both near-duplicate checks of a task, so each prompt is hashed
once: the data check at the start of a session must cost well under a second.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH

from harness.tasks.base import Example, TaskData, normalize_text

JACCARD_THRESHOLD = 0.8
"""Two prompts are near-duplicates when the Jaccard similarity of their shingle sets is at
least this (Lee et al. 2022 use 0.8 for their NearDup)."""
SHINGLE_WORDS = 3
"""Words per shingle; prompts shorter than this are compared as sets of single words."""
NUM_PERM = 128
"""MinHash permutations (signature length)."""
MINHASH_SEED = 1
"""Seed of the MinHash permutations: the same data always gives the same candidates."""
LSH_BANDS, LSH_ROWS = 18, 7
"""LSH bands and rows per band (126 of the 128 permutations): a pair is proposed when one
band of its signatures agrees, with probability 1 - (1 - J^7)^18 at Jaccard J."""
RULE = (f"Jaccard >= {JACCARD_THRESHOLD} over word {SHINGLE_WORDS}-gram shingles of the "
        f"normalised prompt (MinHash LSH, {NUM_PERM} permutations, confirmed exactly)")
"""The rule in words, for summaries."""


@dataclass(frozen=True)
class NearMatch:
    """Queried item ``index`` nearly matches indexed item ``match``."""

    index: int
    match: int
    jaccard: float


def template_words(texts: Sequence[str]) -> tuple[int, int]:
    """How many words every one of ``texts`` (normalised) shares at its start and at its end."""
    words = [text.split() for text in texts if text]
    if len(words) < 2:
        return 0, 0
    shortest = min(len(w) for w in words)
    start = 0
    while start < shortest and all(w[start] == words[0][start] for w in words):
        start += 1
    end = 0
    while end < shortest - start and all(w[-1 - end] == words[0][-1 - end] for w in words):
        end += 1
    return start, end


def shingles(words: Sequence[str]) -> frozenset[str]:
    """The word :data:`SHINGLE_WORDS`-grams of ``words`` (single words if there are fewer)."""
    if len(words) < SHINGLE_WORDS:
        return frozenset(words)
    shifted = (words[k:] for k in range(SHINGLE_WORDS))  # zip stops at the shortest
    return frozenset(map(" ".join, zip(*shifted, strict=False)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


class PromptIndex:
    """The prompts of a task's train, validation and eval splits as shingle sets (one
    template left out of all) with MinHash signatures, and an LSH index of the train and
    validation prompts (the held-in items, in that order)."""

    def __init__(self, data: TaskData) -> None:
        self.train, self.validation, self.eval = data.train, data.validation, data.eval
        self.held_in: list[Example] = [*data.train, *data.validation]
        items = [*self.held_in, *data.eval]
        self.texts = [normalize_text(e.prompt_text) for e in items]
        start, end = template_words(self.texts)
        words = [text.split() for text in self.texts]
        self.sets = [shingles(w[start:len(w) - end]) for w in words]
        distinct = list(dict.fromkeys(s for s in self.sets if s))
        hashed = MinHash.bulk([[s.encode() for s in shingle_set] for shingle_set in distinct],
                              num_perm=NUM_PERM, seed=MINHASH_SEED, hashfunc=zlib.crc32)
        signature = dict(zip(distinct, hashed, strict=True))
        self.signatures = [signature.get(s) for s in self.sets]
        self.lsh = MinHashLSH(num_perm=NUM_PERM, params=(LSH_BANDS, LSH_ROWS))
        for key in range(len(self.held_in)):
            if self.signatures[key] is not None:
                self.lsh.insert(key, self.signatures[key], check_duplication=False)

    def near_within_train(self) -> Iterator[NearMatch]:
        """For each train item, its most similar earlier train item at or above the
        threshold, if any (equal normalised prompts included: the caller leaves out what it
        counts as exact). Indices are into ``data.train``."""
        for index in range(len(self.train)):
            found = self._best(index, lambda key, i=index: key < i)
            if found is not None:
                yield NearMatch(index, *found)

    def near_eval(self) -> Iterator[NearMatch]:
        """For each eval item, its most similar train or validation item at or above the
        threshold, if any. ``index`` is into ``data.eval``, ``match`` into :attr:`held_in`."""
        offset = len(self.held_in)
        for index in range(len(self.eval)):
            found = self._best(offset + index, lambda key: True)
            if found is not None:
                yield NearMatch(index, *found)

    def _best(self, item: int, allowed: Callable[[int], bool]) -> tuple[int, float] | None:
        """The allowed LSH candidate with the highest exact Jaccard to ``item``, if it reaches
        the threshold (ties: the earliest)."""
        signature = self.signatures[item]
        if signature is None:
            return None
        scored = [(jaccard(self.sets[item], self.sets[key]), -key)
                  for key in self.lsh.query(signature) if allowed(key)]
        best = max(scored, default=None)
        if best is None or best[0] < JACCARD_THRESHOLD:
            return None
        return -best[1], best[0]

