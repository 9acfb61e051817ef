"""How a user's task is scored -- classification over labels, or free text -- and why.

Classification lets the accuracy suite score each label's log-likelihood as the reply
(lm-eval's multiple-choice protocol) besides free generation; free text is scored by generation
only. :func:`decide_scoring` decides, in this order:

1. ``task.scoring=generation``: free text; the records' ``choices`` are dropped.
2. ``task.labels=a,b``: classification over those labels; an answer outside them is a
   :class:`DataError` naming its record and field.
3. Every record gives the same ``choices``: classification over them.
4. Records give different ``choices`` (multiple choice): each is scored over its own choices;
   ``task.scoring=classification`` is then an error, as there is no one label set.
5. ``task.scoring=classification``: the distinct answers are the labels (at least two).
6. Otherwise (``auto``) the answers are labels if they look like labels: 2 to 20 distinct
   values, each occurring at least twice, and at least three records per label. Answers that
   *almost* look like labels -- two or more values occurring at least twice plus a few that
   occur once (no more of them than of the frequent ones, and at most one record in ten) --
   are scored as free text with a :class:`DataWarning` naming the rare values and their
   records, and how to score the task as classification.

The decision is a one-line note (:attr:`Scoring.note`) kept on the task data, stored with
every run and printed in the session summary.
"""

from __future__ import annotations

import difflib
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.data.errors import DataError, DataWarning
from harness.data.records import ANSWER_FIELD
from harness.tasks.base import Example

MAX_LABELS = 20
"""The most distinct answers read as class labels without ``task.labels``."""


@dataclass(frozen=True)
class Scoring:
    """A scoring decision: the labels (empty for free text), why, and what happens to the
    records' ``choices``: ``set`` to the labels, ``strip`` them, or ``keep`` them."""

    labels: tuple[str, ...]
    note: str
    choices: str = "keep"

    def apply(self, examples: Sequence[Example]) -> list[Example]:
        """``examples`` with their ``choices`` as the decision says."""
        if self.choices == "set":
            return [replace(e, choices=self.labels) for e in examples]
        if self.choices == "strip":
            return [replace(e, choices=()) for e in examples]
        return list(examples)


def _over(labels: Sequence[str], why: str = "") -> str:
    note = f"scored as classification over {len(labels)} labels ({', '.join(labels)}){why}"
    if all(label.lstrip("-").isdigit() for label in labels):
        names = ",".join(f"{label}=..." for label in labels[:2])
        note += (f"; the labels are numbers: name them (--label-names {names}) so the model "
                 "chooses between words")
    return note


def _rare(counts: Counter[str], examples: Sequence[Example]) -> list[tuple[str, str]]:
    """(``'x'``, ``(file:line)``) for each answer occurring once, in file order; the second
    part also names a frequent answer it resembles (a typo, a different case)."""
    frequent = [a for a, n in counts.items() if n >= 2]
    rare = sorted((e for e in examples if counts[e.answer] == 1), key=_in_file_order)
    out = []
    for example in rare:
        close = difflib.get_close_matches(example.answer, frequent, n=1, cutoff=0.8)
        out.append((repr(example.answer),
                    f"({example.source}{f', close to {close[0]!r}' if close else ''})"))
    return out


def _in_file_order(example: Example) -> tuple[str, int]:
    file, _, line = example.source.rpartition(":")
    return (file, int(line)) if line.isdigit() else (example.source, 0)


def _free_text(examples: Sequence[Example], name: str) -> Scoring:
    """The auto decision (rule 6 of the module doc)."""
    counts = Counter(e.answer for e in examples)
    frequent = sorted(a for a, n in counts.items() if n >= 2)
    rare = len(counts) - len(frequent)
    if 2 <= len(counts) <= MAX_LABELS and not rare and 3 * len(counts) <= len(examples):
        return Scoring(tuple(sorted(counts)), _over(sorted(counts)), "set")
    if len(counts) == 1:
        return Scoring((), f"scored as free text: every answer is {next(iter(counts))!r}")
    force = f"pass `--set task.labels={','.join(frequent)}`"
    if (len(frequent) >= 2 and 0 < rare <= len(frequent) and 10 * rare <= len(examples)
            and len(counts) <= MAX_LABELS):
        listed = _rare(counts, examples)
        what = (f"label {listed[0][0]} occurs once {listed[0][1]}" if rare == 1
                else f"labels {', '.join(' '.join(pair) for pair in listed)} occur once each")
        note = (f"scored as free text: {what}; {force} (or give each record `choices`) to "
                "score it as classification")
        warnings.warn(f"{name}: {note}", DataWarning, stacklevel=3)
        return Scoring((), note)
    if len(counts) <= MAX_LABELS and not rare:
        return Scoring((), f"scored as free text: {len(counts)} distinct answers among only "
                           f"{len(examples)} records (reading answers as labels needs at least "
                           f"3 records per label); {force} to score it as classification")
    if len(counts) > MAX_LABELS:
        return Scoring((), f"scored as free text: {len(counts)} distinct answers among "
                           f"{len(examples)} records (labels are at most {MAX_LABELS})")
    return Scoring((), f"scored as free text: {len(counts)} distinct answers among "
                       f"{len(examples)} records, {rare} of them occurring once")


def decide_scoring(examples: Sequence[Example], name: str, *, labels: Sequence[str] = (),
                   scoring: str = "auto") -> Scoring:
    """How the task of ``examples`` (all splits; ``name`` for messages) is scored: see the
    module doc."""
    if scoring == "generation":
        return Scoring((), "scored as free text (task.scoring=generation)", "strip")
    if labels:
        for example in examples:
            if example.answer not in labels:
                field = ANSWER_FIELD.get(example.meta.get("format", ""), "output")
                raise DataError(f"{example.source}: field '{field}' is "
                                f"{example.answer!r}, which is not one of task.labels "
                                f"({', '.join(labels)}); fix the record or add the label.")
        return Scoring(tuple(labels), _over(labels, ", given by task.labels"), "set")
    choice_sets = Counter(e.choices for e in examples)
    if len(choice_sets) == 1 and () not in choice_sets:
        return Scoring(examples[0].choices, _over(examples[0].choices, " from the records' "
                                                  "choices"))
    if len(choice_sets) > 1:
        if scoring == "classification":
            raise DataError(f"{name}: task.scoring=classification needs one label set, but the "
                            f"records give {len(choice_sets)} different 'choices'; pass "
                            "`--set task.labels=...` to give the labels.")
        plain = choice_sets.get((), 0)
        rest = f"; {plain} records without choices are scored as free text" if plain else ""
        return Scoring((), f"scored over each record's own choices (multiple choice){rest}")
    if scoring == "classification":
        distinct = sorted({e.answer for e in examples})
        if len(distinct) < 2:
            raise DataError(f"{name}: task.scoring=classification needs at least 2 distinct "
                            f"answers; every answer is {distinct[0]!r}.")
        return Scoring(tuple(distinct), _over(distinct, ", given by task.scoring"), "set")
    return _free_text(examples, name)
