"""Label noise: a seeded share of a task's training answers made wrong, for robustness curves.

``pytest suites/ --label-noise 0.1,0.2,0.4`` trains each approach again on a copy of its
training split in which that share of answers is corrupted (the symmetric "uniform label noise"
of Frénay & Verleysen, 2014, "Classification in the Presence of Label Noise: a Survey", and of
the noisy-label benchmarks that follow it) and measures it on the clean eval split.

Only ``train`` changes. ``validation`` and ``eval`` stay clean: early stopping and checkpoint
choice see true labels (as a practitioner with a small clean dev set would), and every noise
share is scored on the same eval items, so the drop is a paired difference.

How items are corrupted:

- which: one seeded order of the training items (by a hash of seed and item id), independent of
  the share; the first ``round(share * n)`` of it are corrupted, so the items corrupted at 0.1
  are among those corrupted at 0.2, with the same wrong answers (nested curves);
- classification (the item has ``choices``): a wrong label drawn uniformly from the others;
- generation: the answer of another training item whose normalised answer differs
  (:func:`harness.tasks.base.normalize_text`);
- preference (the item has ``rejected``): ``answer`` and ``rejected`` swapped (a flipped pair).

Every draw depends on ``(seed, item id)`` alone (SHA-256), so it is the same in any process. A
corrupted item keeps its id and carries ``meta["corrupted_from"]``, its original answer: the
injected noise stays known, e.g. to score a noisy-label detector. The answers are hashed by
:meth:`TaskData.fingerprint`, so the data hash and trained candidates' cache keys change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.tasks.base import Example, TaskData, normalize_text

CORRUPTED_FROM = "corrupted_from"
"""The ``meta`` key of a corrupted item holding its original answer."""


def _draw(*key: Any) -> int:
    """A 64-bit number drawn from ``key`` alone (SHA-256): the same key always draws the same
    number, in any process, whatever was drawn before."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _pick(options: Sequence[str], *key: Any) -> str:
    """One of ``options``, each as likely, drawn from ``key`` alone."""
    return options[_draw(*key) % len(options)]


def check_share(share: float) -> None:
    """A ``ValueError`` unless ``share`` is a share of items that can be corrupted, [0, 1)."""
    if not 0 <= share < 1:
        raise ValueError(f"label noise share {share!r} is not in [0, 1): give the share of "
                         "training answers to corrupt, e.g. 0.1 for 10%")


def corruption_order(train: Sequence[Example], seed: int) -> list[int]:
    """Indices of ``train`` in the order they get corrupted: one seeded permutation, the same
    for every share (so noisier sets contain the corrupted items of cleaner ones)."""
    return sorted(range(len(train)), key=lambda i: (_draw(seed, "label-noise order",
                                                          train[i].id), i))


def _wrong_answer(item: Example, train: Sequence[Example], seed: int) -> Example:
    """``item`` with a wrong answer (see the module docstring for the rule per kind)."""
    if item.rejected is not None:
        return replace(item, answer=item.rejected, rejected=item.answer)
    if item.choices:
        others = [c for c in item.choices if c != item.answer]
        if not others:
            raise ValueError(f"training item {item.id!r} has one choice ({item.answer!r}): "
                             "no wrong label to give it")
        return replace(item, answer=_pick(others, seed, "label-noise answer", item.id))
    own = normalize_text(item.answer)
    others = [e.answer for e in sorted(train, key=lambda e: e.id)
              if normalize_text(e.answer) != own]
    if not others:
        raise ValueError("the task's training answers are all the same: label noise needs "
                         "another answer to swap in")
    return replace(item, answer=_pick(others, seed, "label-noise answer", item.id))


def corrupt_answers(data: TaskData, share: float, seed: int) -> TaskData:
    """``data`` with ``round(share * len(data.train))`` training answers made wrong, seeded;
    ``validation`` and ``eval`` untouched. ``share`` 0 returns ``data`` itself."""
    check_share(share)
    if share == 0:
        return data
    count = round(share * len(data.train))
    train = list(data.train)
    for index in corruption_order(data.train, seed)[:count]:
        item = data.train[index]
        wrong = _wrong_answer(item, data.train, seed)
        train[index] = replace(wrong, meta={**item.meta, CORRUPTED_FROM: item.answer})
    return replace(data, train=train)


def corrupted_ids(data: TaskData) -> list[str]:
    """Ids of the training items :func:`corrupt_answers` changed."""
    return [e.id for e in data.train if CORRUPTED_FROM in e.meta]
