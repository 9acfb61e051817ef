"""Users' own task data: load, drop duplicates, check for leakage, split and shuffle.

Records are read and validated by :mod:`harness.data.records` (the layouts are described there);
this module turns them into a :class:`TaskData`: splits from a ``split`` field, a folder of
split files, a Hugging Face Hub dataset, or a seeded 80/10/10 split.
"""

from __future__ import annotations

import json
import random
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.data.hub import hub_splits
from harness.data.records import (
    ANSWER_FIELD,
    SPLIT_ALIASES,
    SPLITS,
    SUPPORTED,
    DataError,
    DataWarning,
    load_examples,
)
from harness.tasks.base import Example, TaskData, normalize_text

__all__ = [
    "SPLITS", "SPLIT_ALIASES", "SUPPORTED", "DataError", "DataWarning", "check_duplicates",
    "check_overlap", "load_examples", "load_task_data",
]

_DIR_LAYOUT = ("a directory holding train.* and eval.* (or test.*) files and optionally "
               "validation.* (or valid.*, val.*, dev.*), each .jsonl, .json, .csv or .parquet")
_FORMS = (f"a data file (.jsonl, .json, .csv, .parquet), {_DIR_LAYOUT}, or "
          "hf:owner/name[:config] for a Hugging Face Hub dataset")


def _source(example: Example) -> str:
    return example.meta.get("source", example.id)


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
            dropped.append(f"{_source(example)} (same as {_source(first)})")
        else:
            field = ANSWER_FIELD.get(example.meta.get("format", ""), "answer")
            raise DataError(f"{_source(example)}: field '{field}' is {example.answer!r} but "
                            f"{_source(first)} has the same prompt with {first.answer!r} "
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
    leaks = [f"{_source(e)} (= {_source(seen[k])})" for e in eval
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
                raise DataError(f"{_source(example)}: field 'split' is "
                                f"{example.meta['split']!r} but the record is in the {split} "
                                "data; move it or fix the field.")
    return parts


def _from_file(path: Path, seed: int) -> dict[str, list[Example]]:
    examples = load_examples(path)
    tagged = [e for e in examples if "split" in e.meta]
    if not tagged:
        return _random_split(examples, seed, str(path))
    if len(tagged) < len(examples):
        untagged = next(e for e in examples if "split" not in e.meta)
        raise DataError(f"{_source(untagged)}: field 'split' is missing but other records "
                        "have one; give every record a 'split' or none.")
    return {s: [e for e in examples if e.meta["split"] == s] for s in SPLITS}


def _from_directory(path: Path) -> dict[str, list[Example]]:
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
    return _by_split({split: load_examples(file) for split, file in found.items()})


def _from_hub(ref: str, seed: int) -> dict[str, list[Example]]:
    parts = hub_splits(ref)
    if "train" in parts and "eval" in parts:
        return _by_split(parts)
    return _random_split([e for s in SPLITS for e in parts.get(s, [])], seed, f"hf:{ref}")


def _labels(examples: list[Example]) -> tuple[str, ...]:
    choice_sets = {e.choices for e in examples}
    if len(choice_sets) == 1:
        return next(iter(choice_sets)) or _inferred_labels(examples)
    return ()


def _inferred_labels(examples: list[Example]) -> tuple[str, ...]:
    counts = Counter(e.answer for e in examples)
    if 2 <= len(counts) <= 20 and min(counts.values()) >= 2 and 3 * len(counts) <= len(examples):
        return tuple(sorted(counts))
    return ()


def load_task_data(spec: str, seed: int) -> TaskData:
    """Load, validate, split and shuffle a user's task data.

    ``spec`` is a data file, a directory of split files (``train.*``, ``eval.*`` or ``test.*``,
    optional ``validation.*``, ``valid.*``, ``val.*`` or ``dev.*``), or ``hf:owner/name`` /
    ``hf:owner/name:config`` for a Hub dataset. A file whose records have no ``split`` field is
    shuffled with ``seed`` and split 80/10/10 (records with the same normalised prompt are kept
    on the same side); a missing validation split is carved (10%) off train. Exact duplicates are
    dropped per split, eval prompts must not occur in train or validation, and every split is
    shuffled with ``seed``.

    ``labels``: if every example has the same non-empty ``choices``, those. If no example has
    choices and the answers look like class labels -- 2 to 20 distinct values, each occurring
    at least twice, and at most a third as many distinct values as records -- the sorted
    distinct answers, which also become every example's ``choices``. Otherwise empty.
    """
    if spec.startswith("hf:"):
        name, parts = spec[3:], _from_hub(spec[3:], seed)
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            name, parts = path.resolve().name, _from_directory(path)
        elif path.is_file():
            name, parts = path.stem, _from_file(path, seed)
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
    labels = _labels(train + validation + eval_items)
    if labels and not train[0].choices:
        train, validation, eval_items = ([replace(e, choices=labels) for e in items]
                                         for items in (train, validation, eval_items))
    return TaskData(name=name, train=train, validation=validation, eval=eval_items, labels=labels)
