"""The data check: what in a task's splits would make fine-tuning on it, or measuring it, go
wrong, as :class:`Finding` s (a count, a one-line summary naming the rule, example rows).

Pure functions over a :class:`~harness.tasks.base.TaskData`. Loading
(:mod:`harness.data.load`) already drops exact duplicates and refuses contradictory labels and
eval prompts found in train; these checks add what loading lets through (normalised and near
duplicates, near leaks, rare labels, odd answers, prompts too long for training) and still find
the exact cases in data built some other way. Each row names the item's ``source``
(``file:line`` for users' files, the item id for built-in tasks), its split, its prompt text
and answer, and what it matches or why it is listed.

The findings (names as stored in the results file's ``data_findings`` table; each a count,
lower is better, except ``label_imbalance``, whose ``value`` is a ratio):

- ``duplicate_items``: items of a split whose normalised prompt and answer repeat an earlier
  item's;
- ``conflicting_labels``: items of a split whose normalised prompt repeats an earlier item's
  with another answer;
- ``near_duplicates``: train items nearly repeating an earlier train prompt
  (:data:`harness.data.similarity.RULE`);
- ``train_eval_overlap`` / ``train_eval_near_overlap``: eval items whose prompt occurs in /
  nearly matches a train or validation prompt;
- ``rare_labels``: labels with a small share of the train items; ``label_imbalance``: the
  largest label count over the smallest (classification tasks);
- ``answer_length_outliers``: train answers "far out" by Tukey's fences (open-answer tasks);
- ``truncated_prompts``: train items that training cuts at ``max_length`` tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data.similarity import RULE, PromptIndex
from harness.tasks.base import Example, TaskData, normalize_text

if TYPE_CHECKING:
    from harness.runner.store import Store

MAX_ROWS = 20
"""Example rows kept per finding (the count covers them all)."""
TEXT_CHARS = 240
"""Characters of a prompt or answer kept in a row."""
RARE_SHARE_FACTOR = 4
"""A label is rare below a train share of 1 / (RARE_SHARE_FACTOR x number of labels)..."""
RARE_MIN_ITEMS = 5
"""...or with fewer train items than this."""
TUKEY_K = 3.0
"""Tukey's "far out" fences: Q1 - k IQR and Q3 + k IQR (Tukey 1977, Exploratory Data
Analysis)."""
MIN_LENGTHS = 4
"""Answers needed before quartiles say anything."""
MIN_IQR = 1
"""The smallest interquartile range used for the fences, in words."""
SPLITS = ("train", "validation", "eval")


@dataclass(frozen=True)
class Finding:
    """One check's result: ``count`` items (or labels) found, a ``summary`` naming the rule,
    and at most :data:`MAX_ROWS` example ``rows``; ``value`` is set for a measure that is no
    count (``label_imbalance``); ``split`` is what was checked."""

    name: str
    count: int
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    split: str = "train"
    value: float | None = None

    @property
    def is_problem(self) -> bool:
        """Whether there is something to review (a count above zero)."""
        return self.value is None and self.count > 0


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 3] + "..."


def row(example: Example, split: str, **why: Any) -> dict[str, Any]:
    """A finding's table row for ``example``; ``why`` adds what it matches or why."""
    return {"source": example.source, "split": split, "text": _clip(example.prompt_text),
            "answer": _clip(example.answer), **why}


def is_classification(data: TaskData) -> bool:
    """Whether answers are labels: the task lists labels, or its items list choices."""
    return bool(data.labels) or any(e.choices for s in SPLITS for e in getattr(data, s))


def duplicates(data: TaskData) -> list[Finding]:
    """``duplicate_items`` and ``conflicting_labels``: within each split, items whose prompt is
    the same as an earlier item's after ``normalize_text`` (SQuAD-style normalisation), with
    an answer an earlier one of them has (a repeat) or with a new one (a conflict with the
    first). The counts do not depend on the order: a prompt with answers A, A, B counts one
    of each. Preference items (with a rejected reply) repeat one only if the rejected reply
    matches too, and are never conflicts (a prompt may have several pairs)."""
    repeated: list[dict[str, Any]] = []
    conflicting: list[dict[str, Any]] = []
    splits: set[str] = set()
    for split in SPLITS:
        seen: dict[str, dict[tuple[str, str | None], Example]] = {}
        for example in getattr(data, split):
            prompt = normalize_text(example.prompt_text)
            answers = seen.setdefault(prompt, {}) if prompt else {}
            reply = (example.answer, example.rejected)
            first = next(iter(answers.values()), None)
            if reply in answers:
                repeated.append(row(example, split, matches=answers[reply].source,
                                    why="same normalised prompt and answer"))
                splits.add(split)
            elif first is not None and example.rejected is None and first.rejected is None:
                conflicting.append(row(example, split, matches=first.source,
                                       why=f"same normalised prompt, answer "
                                           f"{_clip(first.answer)!r} there"))
                splits.add(split)
            answers.setdefault(reply, example)
    where = ",".join(s for s in SPLITS if s in splits) or "all"
    rule = "prompt equal after lower-casing and removing punctuation and extra spaces"
    return [
        Finding("duplicate_items", len(repeated),
                f"items repeating an earlier item of their split ({rule}, same answer)",
                repeated[:MAX_ROWS], where),
        Finding("conflicting_labels", len(conflicting),
                f"items repeating an earlier prompt of their split with another answer "
                f"({rule})", conflicting[:MAX_ROWS], where),
    ]


def near_duplicates(data: TaskData, index: PromptIndex | None = None) -> Finding:
    """``near_duplicates``: train items nearly repeating an earlier train prompt
    (:data:`harness.data.similarity.RULE`: MinHash LSH, Broder 1997, as in Lee et al. 2022),
    prompts equal after normalising left out (those are :func:`duplicates`). ``index`` is the
    data's :class:`~harness.data.similarity.PromptIndex`, if already built."""
    index = index or PromptIndex(data)
    rows = [row(data.train[m.index], "train", matches=data.train[m.match].source,
                why=f"Jaccard {m.jaccard:.2f}")
            for m in index.near_within_train() if index.texts[m.index] != index.texts[m.match]]
    return Finding("near_duplicates", len(rows),
                   f"train items nearly repeating an earlier train prompt ({RULE})",
                   rows[:MAX_ROWS])


def _held_in(data: TaskData) -> list[tuple[str, Example]]:
    return [("train", e) for e in data.train] + [("validation", e) for e in data.validation]


def train_eval_overlap(data: TaskData) -> Finding:
    """``train_eval_overlap``: eval items whose normalised prompt occurs in train or
    validation (what memorisation would answer; the contamination check of held-out sets)."""
    seen: dict[str, tuple[str, Example]] = {}
    for split, example in _held_in(data):
        seen.setdefault(normalize_text(example.prompt_text), (split, example))
    seen.pop("", None)
    rows = []
    for example in data.eval:
        found = seen.get(normalize_text(example.prompt_text))
        if found is not None:
            rows.append(row(example, "eval", matches=f"{found[0]} {found[1].source}",
                            why="same normalised prompt"))
    return Finding("train_eval_overlap", len(rows),
                   "eval items whose prompt occurs in train or validation (after "
                   "normalising case, punctuation and spaces)",
                   rows[:MAX_ROWS], "eval")


def train_eval_near_overlap(data: TaskData, index: PromptIndex | None = None) -> Finding:
    """``train_eval_near_overlap``: eval items whose prompt nearly matches a train or
    validation prompt (:data:`harness.data.similarity.RULE`), exact overlaps left out."""
    index = index or PromptIndex(data)
    held_in = _held_in(data)
    exact = set(index.texts[:len(held_in)])
    rows = []
    for m in index.near_eval():
        if index.texts[len(held_in) + m.index] not in exact:
            split, match = held_in[m.match]
            rows.append(row(data.eval[m.index], "eval", matches=f"{split} {match.source}",
                            why=f"Jaccard {m.jaccard:.2f}"))
    return Finding("train_eval_near_overlap", len(rows),
                   f"eval items nearly matching a train or validation prompt ({RULE})",
                   rows[:MAX_ROWS], "eval")


def label_balance(data: TaskData) -> list[Finding]:
    """``rare_labels`` and ``label_imbalance`` for classification tasks (none otherwise): the
    train items per label; a label is rare below a share of 1 / (4 x labels) or under 5
    items; the imbalance is the largest count over the smallest (infinite if a label has no
    train item)."""
    if not is_classification(data) or not data.train:
        return []
    labels = list(data.labels) or sorted({c for e in data.train for c in e.choices}
                                         | {e.answer for e in data.train})
    counts = Counter({label: 0 for label in labels})
    counts.update(e.answer for e in data.train)
    total, floor = sum(counts.values()), 1 / (RARE_SHARE_FACTOR * len(counts))
    by_label: dict[str, list[str]] = {}
    for example in data.train:
        by_label.setdefault(example.answer, []).append(example.source)

    def label_row(label: str) -> dict[str, Any]:
        return {"source": ", ".join(by_label.get(label, [])[:3]) or "(no train item)",
                "split": "train", "label": label, "count": counts[label],
                "share": round(counts[label] / total, 4)}

    rare = [label for label in labels
            if counts[label] / total < floor or counts[label] < RARE_MIN_ITEMS]
    smallest = min(counts.values())
    ratio = math.inf if smallest == 0 else max(counts.values()) / smallest
    return [
        Finding("rare_labels", len(rare),
                f"labels rare in train, of {len(labels)} (share below "
                f"1/({RARE_SHARE_FACTOR}x{len(labels)}) = {floor:.3f}, or fewer than "
                f"{RARE_MIN_ITEMS} items): {', '.join(rare[:5]) or 'none'}",
                [label_row(label) for label in rare][:MAX_ROWS]),
        Finding("label_imbalance", total,
                f"largest label count / smallest = {ratio:.3g} over {total} train items "
                f"({', '.join(f'{k} {v}' for k, v in counts.most_common())})",
                [label_row(label) for label, _ in counts.most_common()][:MAX_ROWS],
                value=ratio),
    ]


def answer_length_outliers(data: TaskData) -> Finding | None:
    """``answer_length_outliers``: train answers whose length in words lies outside Tukey's
    far-out fences, Q1 - 3 IQR and Q3 + 3 IQR (Tukey 1977), the IQR taken as at least one word
    (else answers of one uniform length would make every other length an outlier); ``None``
    for classification tasks (labels have no length worth checking)."""
    if is_classification(data):
        return None
    lengths = np.array([len(e.answer.split()) for e in data.train])
    rule = (f"length in words lies outside Tukey's far-out fences Q1 - {TUKEY_K:g} IQR, "
            f"Q3 + {TUKEY_K:g} IQR (IQR at least {MIN_IQR} word)")
    if len(lengths) < MIN_LENGTHS:
        return Finding("answer_length_outliers", 0,
                       f"not checked: {len(lengths)} train answers, {MIN_LENGTHS} needed")
    q1, q3 = np.percentile(lengths, [25, 75])
    spread = max(q3 - q1, MIN_IQR)
    low, high = q1 - TUKEY_K * spread, q3 + TUKEY_K * spread
    far = [i for i in np.argsort(-np.abs(lengths - np.median(lengths)), kind="stable")
           if not low <= lengths[i] <= high]
    rows = [row(data.train[i], "train", why=f"{lengths[i]} words; fences [{low:g}, {high:g}]")
            for i in far]
    return Finding("answer_length_outliers", len(rows),
                   f"train answers whose {rule}: [{low:g}, {high:g}] words",
                   rows[:MAX_ROWS])


def truncated_prompts(data: TaskData, tokenizer: Any, max_length: int) -> Finding:
    """``truncated_prompts``: train items that supervised training cuts at ``max_length``
    tokens (``harness.train.sft``: trl's prompt-completion format in the chat template, cut at
    the end). A prompt of ``max_length`` tokens or more leaves no reply token (trl drops the
    item); a longer prompt + reply loses the end of the reply."""
    from harness.models.lm_candidate import chat_prompt_ids

    lost, cut = [], []
    for example in data.train:
        prompt = len(chat_prompt_ids(tokenizer, example.messages))
        text = tokenizer.apply_chat_template(
            [*example.messages, {"role": "assistant", "content": example.answer}],
            tokenize=False)
        total = len(tokenizer(text, add_special_tokens=False).input_ids)
        if prompt >= max_length:
            lost.append(row(example, "train", tokens=total,
                            why=f"reply lost: prompt {prompt} tokens >= {max_length}"))
        elif total > max_length:
            cut.append(row(example, "train", tokens=total,
                           why=f"reply cut: prompt + reply {total} tokens > {max_length}"))
    rows = lost + cut
    return Finding("truncated_prompts", len(rows),
                   f"train items longer than max_length {max_length} tokens in the chat "
                   f"template: {len(lost)} lose the whole reply (prompt >= max_length), "
                   f"{len(cut)} lose its end; raise --set APPROACH.max_length=N or shorten "
                   "them", rows[:MAX_ROWS])


def cheap_findings(data: TaskData) -> list[Finding]:
    """Every check that needs no tokenizer (all but :func:`truncated_prompts`), the prompts
    hashed once for both near-duplicate checks: what runs at the start of a session."""
    index = PromptIndex(data)
    found = [*duplicates(data), near_duplicates(data, index), train_eval_overlap(data),
             train_eval_near_overlap(data, index), *label_balance(data)]
    outliers = answer_length_outliers(data)
    return found if outliers is None else [*found, outliers]


def header_lines(findings: Sequence[Finding], task: str) -> list[str]:
    """The start-of-session block: one line per finding with a count, naming its first three
    sources, and the command that shows the tables."""
    problems = [f for f in findings if f.is_problem]
    command = f"run pytest suites/test_data_quality.py --task={task} for the tables"
    if not problems:
        return [f"tunebench data check: nothing found ({len(findings)} checks); {command}"]
    lines = [f"tunebench data check: {len(problems)} finding(s) to review"]
    for finding in problems:
        sources = ", ".join(str(r["source"]) for r in finding.rows[:3])
        more = ", ..." if finding.count > 3 else ""
        lines.append(f"  {finding.name}: {finding.count} ({sources}{more})")
    return [*lines, f"  {command}"]


def store_findings(store: Store, session: str, data: TaskData, findings: Sequence[Finding],
                   data_hash: str | None = None) -> None:
    """Write ``findings`` on ``data`` to the results ``store``
    (:meth:`harness.runner.store.Store.add_data_finding`), replacing the session's earlier
    rows of the same data and names. ``data_hash`` is ``data.fingerprint()``, given by a
    caller that stores several findings on the same data (hashing it is not free)."""
    data_hash = data_hash or data.fingerprint()
    for finding in findings:
        store.add_data_finding(session=session, task=data.name, data_hash=data_hash,
                               split=finding.split, name=finding.name, count=finding.count,
                               value=finding.value, summary=finding.summary, rows=finding.rows)
