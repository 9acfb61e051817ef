"""Reading users' data files record by record, with errors that name file, line and field.

Files: JSON Lines (``.jsonl``; ``.json`` holding JSON Lines or one JSON array), ``.csv`` or
``.tsv`` (tab-separated) with a header row, or ``.parquet``; Hub dataset rows go through the same
checks (see :mod:`harness.data.load`). Text files are UTF-8 unless ``task.encoding`` says
otherwise; columns and label values are mapped first if the user asks (``--columns``,
``--label-names``: :mod:`harness.data.mapping`). Each record is in one of three layouts,
detected per record from its keys; they follow the usual public fine-tuning layouts:

1. **Instruction** -- Alpaca (https://github.com/tatsu-lab/stanford_alpaca#data-release):
   ``{"instruction": ..., "input": ..., "output": ...}``. The user turn is the instruction,
   plus a blank line and ``input`` when ``input`` is present; ``output`` is the answer.
2. **Chat** -- OpenAI chat fine-tuning (https://platform.openai.com/docs/guides/fine-tuning):
   ``{"messages": [{"role": ..., "content": ...}, ...]}`` with roles system/user/assistant.
   The last message is the assistant's answer; the turns before it must end with a user turn.
3. **Preference** -- TRL preference datasets (https://huggingface.co/docs/trl/dataset_formats):
   ``{"prompt": ..., "chosen": ..., "rejected": ...}``. ``prompt`` is a string or a message
   list; ``chosen``/``rejected`` are strings or message lists whose last assistant turn is taken.

A record is read in the one layout whose required fields it has; having the fields of two
layouts is an error. Optional fields in every layout: ``id`` (default ``"<file name>:<line>"``),
``system`` (a system prompt, put first), ``choices`` (allowed answers; a ``|``-separated string
in CSV; the answer must be one of them) and ``split`` (train / validation / eval; valid, val,
dev and test are aliases). Null and blank values count as absent; other fields are ignored. In
CSV and Parquet, message lists may be JSON strings. Every problem raises :class:`DataError`
naming the file, the line (file line in JSONL/JSON/CSV, where the CSV header is line 1; "row N"
in Parquet and Hub datasets), the field, and what to do. A file that mixes layouts is read, with
a :class:`DataWarning` counting the records of each layout.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from harness.data.errors import DataError, DataWarning, Location, absent, type_name
from harness.data.mapping import RecordMapping, decode, renamed
from harness.tasks.base import Example, Message

__all__ = ["ANSWER_FIELD", "SPLITS", "SPLIT_ALIASES", "SUPPORTED", "DataError", "DataWarning",
           "Location", "layout_counts", "load_examples", "read_rows", "to_example"]

SUPPORTED = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
SPLITS = ("train", "validation", "eval")
SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "eval": "eval", "test": "eval"}
_LAYOUTS = {"instruction": ("instruction", "output"), "chat": ("messages",),
            "preference": ("prompt", "chosen", "rejected")}
_MARKERS = {"instruction": ("instruction", "input", "output"), "chat": ("messages",),
            "preference": ("prompt", "chosen", "rejected")}
ANSWER_FIELD = {"instruction": "output", "chat": "messages", "preference": "chosen"}
_HINT = ("Each record needs 'instruction' and 'output' (optional 'input'), or 'messages', "
         "or 'prompt'/'chosen'/'rejected'.")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MAPPING_HINT = "Other column names can be mapped: --columns input=text,output=label."


def _read(path: Path, encoding: str | None) -> tuple[list[tuple[int, object]], str, bool]:
    """(line or row number, raw record) pairs, the location unit, and whether it is tabular."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DataError(f"{path}: unsupported file type '{suffix or '(none)'}'; "
                        f"use one of {', '.join(SUPPORTED)}.")
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(enumerate(pq.read_table(path).to_pylist(), 1)), "row", True
        data = path.read_bytes()
    except (OSError, ValueError) as exc:  # includes pyarrow errors
        raise DataError(f"{path}: cannot read the file ({exc}); check that it exists, is "
                        f"readable and is a valid {suffix[1:].upper()} file.") from exc
    text = decode(path, data, encoding)
    if suffix in (".csv", ".tsv"):
        return _csv_rows(path, text, "\t" if suffix == ".tsv" else ","), "line", True
    if text.lstrip().startswith("["):
        return _json_array(path, text), "line", False
    records = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON ({exc.msg} at column "
                                f"{exc.colno}); each line must hold one JSON object.") from None
    return records, "line", False


def _json_array(path: Path, text: str) -> list[tuple[int, object]]:
    """The items of a JSON array file, each with the line it starts on."""
    decoder, records, line, counted = json.JSONDecoder(), [], 1, 0
    pos = _WHITESPACE.match(text, text.index("[") + 1).end()
    try:
        while text[pos:pos + 1] != "]":
            value, end = decoder.raw_decode(text, pos)
            line, counted = line + text.count("\n", counted, pos), pos
            records.append((line, value))
            pos = _WHITESPACE.match(text, end).end()
            if text[pos:pos + 1] == ",":
                pos = _WHITESPACE.match(text, pos + 1).end()
            elif text[pos:pos + 1] != "]":
                raise json.JSONDecodeError("expected ',' or ']'", text, pos)
        if text[pos + 1:].strip():
            raise json.JSONDecodeError("extra data after the array", text, pos + 1)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); "
                        "the file must be one JSON array of objects, or JSON Lines.") from None
    return records


def _csv_rows(path: Path, text: str, delimiter: str) -> list[tuple[int, object]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header, rows = None, []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: invalid {path.suffix[1:].upper()} ({exc}).") from None
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
        elif len(row) > len(header):
            separator = "tabs" if delimiter == "\t" else "commas"
            raise DataError(f"{path}:{start}: {len(row)} values but the header has "
                            f"{len(header)} columns; quote values that contain {separator}.")
        else:
            rows.append((start, dict(zip(header, row, strict=False))))


def _text(record: dict, key: str, where: Location) -> str:
    if not isinstance(record[key], str):
        raise where.error(f"field '{key}' must be a string, got {type_name(record[key])}.")
    return record[key]


def _maybe_json(value: object, tabular: bool) -> object:
    """In CSV/Parquet, a message list may be stored as a JSON string."""
    if tabular and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, list) and all(isinstance(m, dict) for m in parsed):
            return parsed
    return value


def _messages(value: object, key: str, where: Location) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise where.error(f"field '{key}' must be a non-empty list of {{\"role\": ..., "
                          f"\"content\": ...}} messages, got {type_name(value)}.")
    out = []
    for i, message in enumerate(value):
        name = f"{key}[{i}]"
        if not isinstance(message, dict):
            raise where.error(f"field '{name}' must be an object with 'role' and 'content', "
                              f"got {type_name(message)}.")
        for part in ("role", "content"):
            if not isinstance(message.get(part), str):
                problem = "is missing" if message.get(part) is None else "must be a string"
                raise where.error(f"field '{name}.{part}' {problem}; every message needs a "
                                  "'role' (system, user or assistant) and a 'content' string.")
        if message["role"] not in ("system", "user", "assistant"):
            raise where.error(f"field '{name}.role' is {message['role']!r}; "
                              "use system, user or assistant.")
        if not message["content"].strip():
            raise where.error(f"field '{name}.content' is empty; give the message text.")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def _prompt_ends_with_user(prompt: list[Message], key: str, where: Location) -> None:
    if not prompt or prompt[-1]["role"] != "user":
        raise where.error(f"field '{key}': the prompt turns must end with a user message "
                          f"(got {prompt[-1]['role'] if prompt else 'no turns'}).")


def _reply(record: dict, key: str, where: Location, tabular: bool) -> str:
    value = _maybe_json(record[key], tabular)
    if isinstance(value, str):
        return value
    for message in reversed(_messages(value, key, where)):
        if message["role"] == "assistant":
            return message["content"]
    raise where.error(f"field '{key}' has no assistant message; give the reply as a string or "
                      "as messages ending with an assistant turn.")


def to_example(raw: object, where: Location, id_prefix: str, tabular: bool) -> Example:
    """One validated :class:`Example` from a raw record (the layouts are in the module doc)."""
    if not isinstance(raw, dict):
        raise where.error(f"the record is not an object (got {type_name(raw)}). {_HINT}")
    record = {key: value for key, value in raw.items() if not absent(value)}
    complete = [kind for kind, keys in _LAYOUTS.items() if all(k in record for k in keys)]
    marked = [kind for kind, keys in _MARKERS.items() if any(k in record for k in keys)]
    if len(complete) > 1 or (not complete and len(marked) > 1):
        fields = [k for kind in marked for k in _MARKERS[kind] if k in record]
        raise where.error(f"fields {fields} mix the {' and '.join(complete or marked)} layouts; "
                          f"use one layout per record. {_HINT}")
    if not complete:
        if not marked:
            raise where.error(f"no known field (found {sorted(map(str, record))}). {_HINT} "
                              f"{_MAPPING_HINT}")
        missing = next(k for k in _LAYOUTS[marked[0]] if k not in record)
        raise where.error(f"field '{missing}' is missing or empty. {_HINT}")
    kind, rejected = complete[0], None
    if kind == "instruction":
        user = _text(record, "instruction", where)
        if "input" in record:
            user += "\n\n" + _text(record, "input", where)
        prompt, answer = [{"role": "user", "content": user}], _text(record, "output", where)
        prompt_key = "instruction"
    elif kind == "chat":
        turns = _messages(_maybe_json(record["messages"], tabular), "messages", where)
        if turns[-1]["role"] != "assistant":
            raise where.error(f"field 'messages': the last message must be the assistant's "
                              f"answer, got role {turns[-1]['role']!r}.")
        prompt, answer, prompt_key = turns[:-1], turns[-1]["content"], "messages"
        _prompt_ends_with_user(prompt, "messages", where)
    else:
        value, prompt_key = _maybe_json(record["prompt"], tabular), "prompt"
        if isinstance(value, str):
            prompt = [{"role": "user", "content": value}]
        else:
            prompt = _messages(value, "prompt", where)
            _prompt_ends_with_user(prompt, "prompt", where)
        answer = _reply(record, "chosen", where, tabular)
        rejected = _reply(record, "rejected", where, tabular)
    if "system" in record:
        if prompt[0]["role"] == "system":
            raise where.error(f"field 'system' conflicts with the system message already in "
                              f"'{prompt_key}'; keep one of them.")
        prompt.insert(0, {"role": "system", "content": _text(record, "system", where)})
    choices: tuple[str, ...] = ()
    if "choices" in record:
        value = record["choices"]
        if isinstance(value, str):
            value = [c.strip() for c in value.split("|") if c.strip()]
        if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
            raise where.error("field 'choices' must be a list of strings (in CSV, one string "
                              f"with the choices separated by '|'), got {type_name(value)}.")
        choices = tuple(value)
        if answer not in choices:
            raise where.error(f"field '{ANSWER_FIELD[kind]}': the answer {answer!r} is not one "
                              f"of the choices {list(choices)}; fix it or add it to 'choices'.")
    meta = {"source": f"{where.file}:{where.line}", "format": kind}
    if "split" in record:
        split = record["split"]
        if not isinstance(split, str) or split.strip().lower() not in SPLIT_ALIASES:
            raise where.error(f"field 'split' is {split!r}; use train, validation or eval "
                              "(aliases: valid, val, dev, test).")
        meta["split"] = SPLIT_ALIASES[split.strip().lower()]
    item_id = record.get("id", f"{id_prefix}:{where.line}")
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        raise where.error(f"field 'id' must be a string or an integer, got {type_name(item_id)}.")
    return Example(id=str(item_id), messages=tuple(prompt), answer=answer, choices=choices,
                   rejected=rejected, meta=meta)


def layout_counts(examples: Sequence[Example]) -> str:
    """How many records of each layout, e.g. ``40 instruction records and 3 chat records``."""
    parts = [f"{n} {layout} record{'' if n == 1 else 's'}"
             for layout, n in Counter(e.meta.get("format", "?") for e in examples).most_common()]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def read_rows(rows: Sequence[tuple[int, object]], name: str, unit: str, tabular: bool,
              mapping: RecordMapping | None = None, id_prefix: str = "") -> list[Example]:
    """Validate the raw records of one file or Hub split ``name``: (line or row number,
    record) pairs, mapped first (:class:`~harness.data.mapping.RecordMapping`). Errors name the
    user's columns; a file that mixes layouts is read with a :class:`DataWarning` counting them.
    """
    mapping = mapping or RecordMapping()
    if mapping.columns:
        mapping.check_columns(name, list(dict.fromkeys(
            key for _, raw in rows if isinstance(raw, dict) for key in raw)))
    examples = []
    for number, raw in rows:
        where = Location(name, number, unit)
        record, names = mapping.rename(raw)
        try:
            examples.append(to_example(mapping.relabel(record, where), where,
                                       id_prefix or name, tabular))
        except DataError as error:
            raise renamed(error, names) from None  # in the user's column names
    if len({e.meta["format"] for e in examples}) > 1:
        warnings.warn(f"{name}: read {layout_counts(examples)}", DataWarning, stacklevel=2)
    return examples


def load_examples(path: Path, *, encoding: str | None = None,
                  mapping: RecordMapping | None = None) -> list[Example]:
    """Read and validate every record of a .jsonl, .json, .csv, .tsv or .parquet file, in
    order; ``encoding`` (default UTF-8) and ``mapping`` as in :mod:`harness.data.mapping`."""
    path = Path(path)
    rows, unit, tabular = _read(path, encoding)
    if not rows:
        raise DataError(f"{path}: the file holds no records; add at least one. {_HINT}")
    return read_rows(rows, str(path), unit, tabular, mapping, id_prefix=path.name)
