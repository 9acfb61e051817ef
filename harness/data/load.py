"""Users' own task data: load, drop duplicates, check for leakage, split, shuffle, and decide
how the task is scored.

Records are read and validated by :mod:`harness.data.records` (the layouts are described there),
after the user's encoding, column and label mapping (:mod:`harness.data.mapping`); this module
turns them into a :class:`TaskData`: splits from a ``split`` field, a folder of split files, a
Hugging Face Hub dataset, or a seeded 80/10/10 split. Whether the task is scored as
classification or free text, and why, is :mod:`harness.data.scoring`'s decision, kept as the
note ``TaskData.scoring``.
"""

from __future__ import annotations

import functools
import json
import random
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.data.hub import hub_splits
from harness.data.mapping import RecordMapping, renamed
from harness.data.records import (
    ANSWER_FIELD,
    SPLIT_ALIASES,
    SPLITS,
    SUPPORTED,
    DataError,
    DataWarning,
    layout_counts,
    load_examples,
)
from harness.data.scoring import decide_scoring
from harness.tasks.base import Example, TaskData, normalize_text

__all__ = [
    "SPLITS", "SPLIT_ALIASES", "SUPPORTED", "DataError", "DataWarning", "check_duplicates",
    "check_overlap", "load_examples", "load_task_data",
]

_DIR_LAYOUT = ("a directory holding train.* and eval.* (or test.*) files and optionally "
               "validation.* (or valid.*, val.*, dev.*), each .jsonl, .json, .csv, .tsv or "
               ".parquet")
_FORMS = (f"a data file (.jsonl, .json, .csv, .tsv, .parquet), {_DIR_LAYOUT}, or "
          "hf:owner/name[:config] for a Hugging Face Hub dataset")
Reader = Callable[[Path], list[Example]]


def check_duplicates(examples: Sequence[Example]) -> list[Example]:
    """Drop exact duplicates (same prompt messages and answer), keeping the first of each.

    Warns once (:class:`DataWarning`) with the count and the first few duplicates' sources.
    The same prompt with a different answer is a contradictory label and raises
    :class:`DataError` naming both records. Preference items (with ``rejected``) are only
    duplicates if the rejected reply matches too; one prompt may have several pairs.
    """
    first_seen: dict[str, Example] = {}
    kept, dropped = [], []
    for example in examples:
        key = json.dumps([example.messages] + ([] if example.rejected is None else
                                               [example.answer, example.rejected]))
        first = first_seen.setdefault(key, example)
        if first is example:
            kept.append(example)
        elif first.answer == example.answer:
            dropped.append(f"{example.source} (same as {first.source})")
        else:
            field = ANSWER_FIELD.get(example.meta.get("format", ""), "answer")
            raise DataError(f"{example.source}: field '{field}' is {example.answer!r} but "
                            f"{first.source} has the same prompt with {first.answer!r} "
                            "(contradictory labels); correct or remove one of the two.")
    if dropped:
        more = ", ..." if len(dropped) > 5 else ""
        warnings.warn(f"dropped {len(dropped)} exact duplicate item(s): "
                      f"{', '.join(dropped[:5])}{more}", DataWarning, stacklevel=2)
    return kept


def check_overlap(train: Sequence[Example], eval: Sequence[Example], *,
                  train_name: str = "train", eval_name: str = "eval") -> None:
    """Raise :class:`DataError` if any eval prompt (normalised text) also occurs in train."""
    seen: dict[str, Example] = {}
    for example in train:
        seen.setdefault(normalize_text(example.prompt_text), example)
    seen.pop("", None)
    leaks = [f"{e.source} (= {seen[k].source})" for e in eval
             if (k := normalize_text(e.prompt_text)) in seen]
    if leaks:
        more = ", ..." if len(leaks) > 5 else ""
        raise DataError(f"{len(leaks)} {eval_name} item(s) have a prompt that also occurs in "
                        f"{train_name} (after normalising case, punctuation and spaces): "
                        f"{', '.join(leaks[:5])}{more}. Remove them from one side so the "
                        "evaluation measures generalisation, not memorisation.")


def _take(
    examples: Sequence[Example], n: int, rng: random.Random
) -> tuple[list[Example], list[Example]]:
    """(taken, rest): about ``n`` random items; items with the same prompt stay together."""
    order = list(examples)
    rng.shuffle(order)
    keys = [normalize_text(e.prompt_text) for e in order]
    counts, chosen, total = Counter(keys), set(), 0
    for key in keys:
        if total >= n:
            break
        if key not in chosen:
            chosen.add(key)
            total += counts[key]
    pairs = list(zip(order, keys, strict=True))
    return [e for e, k in pairs if k in chosen], [e for e, k in pairs if k not in chosen]


def _random_split(examples: list[Example], seed: int, name: str) -> dict[str, list[Example]]:
    examples = check_duplicates(examples)
    if len(examples) < 3:
        raise DataError(f"{name}: only {len(examples)} distinct record(s); at least 3 are needed "
                        "to split into train, validation and eval (or give a 'split' field).")
    rng = random.Random(seed)
    held_out = max(1, len(examples) // 10)
    eval_items, rest = _take(examples, held_out, rng)
    validation, train = _take(rest, held_out, rng)
    return {"train": train, "validation": validation, "eval": eval_items}


def _by_split(parts: dict[str, list[Example]]) -> dict[str, list[Example]]:
    """Check that records with a 'split' field agree with the file or split holding them."""
    for split, examples in parts.items():
        for example in examples:
            if example.meta.get("split", split) != split:
                raise DataError(f"{example.source}: field 'split' is "
                                f"{example.meta['split']!r} but the record is in the {split} "
                                "data; move it or fix the field.")
    return parts


def _from_file(path: Path, seed: int, read: Reader) -> dict[str, list[Example]]:
    examples = read(path)
    tagged = [e for e in examples if "split" in e.meta]
    if not tagged:
        return _random_split(examples, seed, str(path))
    if len(tagged) < len(examples):
        untagged = next(e for e in examples if "split" not in e.meta)
        raise DataError(f"{untagged.source}: field 'split' is missing but other records "
                        "have one; give every record a 'split' or none.")
    return {s: [e for e in examples if e.meta["split"] == s] for s in SPLITS}


def _from_directory(path: Path, read: Reader) -> dict[str, list[Example]]:
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        split = SPLIT_ALIASES.get(file.stem.lower())
        if file.is_file() and file.suffix.lower() in SUPPORTED and split:
            if split in found:
                raise DataError(f"{path}: both {found[split].name} and {file.name} hold the "
                                f"{split} split; keep one.")
            found[split] = file
    missing = [s for s in ("train", "eval") if s not in found]
    if missing:
        names = ", ".join(sorted(f.name for f in path.iterdir())) or "nothing"
        raise DataError(f"{path}: no {' or '.join(missing)} file (found: {names}); "
                        f"expected {_DIR_LAYOUT}.")
    return _by_split({split: read(file) for split, file in found.items()})


def _from_hub(ref: str, seed: int, mapping: RecordMapping) -> dict[str, list[Example]]:
    parts = hub_splits(ref, mapping)
    if "train" in parts and "eval" in parts:
        return _by_split(parts)
    return _random_split([e for s in SPLITS for e in parts.get(s, [])], seed, f"hf:{ref}")


def load_task_data(
    spec: str, seed: int, *, labels: Sequence[str] = (), scoring: str = "auto",
    columns: Mapping[str, str] | None = None, label_names: Mapping[str, str] | None = None,
    encoding: str | None = None,
) -> TaskData:
    """Load, validate, split and shuffle a user's task data, and decide how it is scored.

    ``spec`` is a data file, a directory of split files (``train.*``, ``eval.*`` or ``test.*``,
    optional ``validation.*``, ``valid.*``, ``val.*`` or ``dev.*``), or ``hf:owner/name`` /
    ``hf:owner/name:config`` for a Hub dataset. A file whose records have no ``split`` field is
    shuffled with ``seed`` and split 80/10/10 (records with the same normalised prompt are kept
    on the same side); a missing validation split is carved (10%) off train. Exact duplicates are
    dropped per split, eval prompts must not occur in train or validation, and every split is
    shuffled with ``seed``.

    The keyword arguments are a data-file task's options (``--set task.NAME=...``):
    ``columns`` and ``label_names`` map the user's column names and label values
    (:mod:`harness.data.mapping`), ``encoding`` is the text files' encoding (default UTF-8),
    and ``labels`` / ``scoring`` force the scoring decision of :mod:`harness.data.scoring`.
    That decision sets ``labels`` (which also become every example's ``choices``) and the note
    ``scoring``, which also names a file's mix of layouts and the options used.
    """
    mapping = RecordMapping(dict(columns or {}), dict(label_names or {}))
    try:
        name, splits = _splits(spec, seed, mapping, encoding)
        examples = [example for items in splits for example in items]
        decision = decide_scoring(examples, spec, labels=labels, scoring=scoring)
    except DataError as error:
        raise renamed(error, mapping.columns) from None  # in the user's column names
    train, validation, eval_items = map(decision.apply, splits)
    mixed = len({e.meta.get("format") for e in examples}) > 1
    note = "; ".join(part for part in (
        decision.note, f"read {layout_counts(examples)}" if mixed else "", mapping.describe(),
        f"encoding {encoding}" if encoding else "") if part)
    return TaskData(name=name, train=train, validation=validation, eval=eval_items,
                    labels=decision.labels, scoring=note)


def _splits(spec: str, seed: int, mapping: RecordMapping, encoding: str | None,
            ) -> tuple[str, tuple[list[Example], list[Example], list[Example]]]:
    """The task's name and its train, validation and eval examples: read, checked, shuffled."""
    read = functools.partial(load_examples, encoding=encoding, mapping=mapping)
    if spec.startswith("hf:"):
        name, parts = spec[3:], _from_hub(spec[3:], seed, mapping)
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            name, parts = path.resolve().name, _from_directory(path, read)
        elif path.is_file():
            name, parts = path.stem, _from_file(path, seed, read)
        else:
            raise DataError(f"{spec}: no such file or directory. Give {_FORMS}.")
    rng = random.Random(seed)
    train, validation, eval_items = (check_duplicates(parts.get(s, [])) for s in SPLITS)
    if not validation and len(train) > 1:
        validation, train = _take(train, max(1, len(train) // 10), rng)
    for split, items in (("train", train), ("eval", eval_items)):
        if not items:
            raise DataError(f"{spec}: the {split} split is empty; field 'split' (or the file "
                            f"layout) must give it at least one record.")
    check_overlap(train + validation, eval_items, train_name="train/validation", eval_name="eval")
    for items in (train, validation, eval_items):
        rng.shuffle(items)
    return name, (train, validation, eval_items)
