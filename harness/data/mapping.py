"""Data that is almost right, read as it is: its text encoding, its column names, its labels.

- :func:`decode` reads UTF-8 (with or without a byte-order mark) unless ``task.encoding``
  names another codec. Bytes that are not valid UTF-8 raise :class:`DataError` naming the line
  and column of the first bad byte (computed from its byte offset) and the encoding the file
  probably has: UTF-16 if it starts with a UTF-16 byte-order mark, cp1252 (Windows Western
  European, what Excel saves on Windows) if that decodes it, else latin-1, which decodes any
  bytes. Parquet stores text as UTF-8 and is not decoded here.
- :class:`RecordMapping` applies ``--columns input=sentence,output=label`` (the user's column
  names for the layout fields of :mod:`harness.data.records`; ``input`` mapped without an
  ``instruction`` makes the input text the whole prompt) and ``--label-names
  0=negative,1=positive`` (rewrites each ``output`` answer and each of the ``choices``; a
  value already equal to one of the names is kept; any other value is an error naming the
  record). A file column named like a mapped field is ignored: the mapping wins. Errors name
  the user's columns, not the layout fields.

Answers that are numbers or booleans (JSON, Parquet and Hub data; CSV values are always text)
are read as labels by their text: integers, and floats with a whole value, as digits (``1``
and ``1.0`` are both ``"1"``; Parquet turns an integer column with a gap into floats), and
booleans as ``true``/``false``. This is what ``--label-names`` keys match, and without label
names it is the answer itself, since it loses nothing. Other floats are refused: they are
measurements rather than labels, and comparing them as text would score ``0.5`` against
``0.50`` as wrong; write them as text or name them with ``--label-names``.
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.errors import DataError, Location, absent

LAYOUT_FIELDS = ("instruction", "input", "output", "messages", "prompt", "chosen", "rejected",
                 "system", "id", "split", "choices")
"""The record fields a column can be mapped onto with ``--columns``."""

_FIELD = re.compile(r"field '([a-z]+)")


def likely_encoding(data: bytes) -> str:
    """The encoding a file that is not UTF-8 was probably saved with."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def decode(path: Path, data: bytes, encoding: str | None = None) -> str:
    """The text of file ``path`` (its bytes ``data``): UTF-8, or ``encoding`` if given."""
    try:
        codec = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}; give a Python codec name "
                        "such as utf-8, cp1252, latin-1 or utf-16.") from None
    if codec == "utf-8":
        data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[start:error.start].decode(codec, errors="replace")) + 1
        problem = (f"{path}:{line}: not valid {encoding or 'UTF-8'} (byte "
                   f"0x{data[error.start]:02x} at column {column})")
        if encoding:
            raise DataError(f"{problem}; task.encoding={encoding} does not fit the file: give "
                            "the encoding it was saved with, or re-save it as UTF-8.") from None
        guess = likely_encoding(data)
        looks = "cp1252/latin-1" if guess == "cp1252" else guess
        raise DataError(f"{problem}; the file looks like {looks}: re-save it as UTF-8 or pass "
                        f"`--set task.encoding={guess}`.") from None


def label_text(value: object) -> str | None:
    """A label value as text (see the module doc); ``None`` for a value that is no label."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else None


def renamed(error: DataError, names: Mapping[str, str]) -> DataError:
    """``error`` with the layout fields it names replaced by the user's columns ``names``
    (layout field -> column); an error already in the user's terms is returned as it is."""
    if not names or error.user_terms:
        return error
    new = DataError(_FIELD.sub(lambda m: f"field '{names.get(m[1], m[1])}", str(error)))
    new.user_terms = True
    return new


@dataclass(frozen=True)
class RecordMapping:
    """The user's column names and label names, applied to each raw record before it is read."""

    columns: Mapping[str, str] = field(default_factory=dict)
    """Layout field -> the column holding it (``--columns input=sentence``)."""
    label_names: Mapping[str, str] = field(default_factory=dict)
    """A label's text -> the label used instead (``--label-names 0=negative``)."""

    def describe(self) -> str:
        """The mapping as the options that give it, for the scoring note ('' if none)."""
        parts = [f"{name} {', '.join(f'{k}={v}' for k, v in pairs.items())}"
                 for name, pairs in (("columns", self.columns),
                                     ("label names", self.label_names)) if pairs]
        return "; ".join(parts)

    def check_columns(self, file: str, columns: Sequence[str]) -> None:
        """Raise :class:`DataError` if a mapped column is not among the file's ``columns``."""
        for target, column in self.columns.items():
            if column not in columns:
                close = difflib.get_close_matches(column, columns, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise DataError(f"{file}: --columns maps {target} to the column {column!r}, "
                                f"which the file does not have.{hint} Its columns: "
                                f"{', '.join(map(str, columns)) or '(none)'}.")

    def rename(self, raw: object) -> tuple[object, dict[str, str]]:
        """The record with mapped columns renamed to layout fields, and the user's name of each
        mapped field (for :func:`renamed`)."""
        if not isinstance(raw, dict) or not self.columns:
            return raw, {}
        names = dict(self.columns)
        record = {key: value for key, value in raw.items()
                  if key not in self.columns and key not in self.columns.values()}
        record.update({target: raw[column] for target, column in names.items() if column in raw})
        if "input" in names and "instruction" not in names and absent(record.get("instruction")):
            names["instruction"] = names.pop("input")  # the input text is the whole prompt
            if "input" in record:
                record["instruction"] = record.pop("input")
        return record, names

    def relabel(self, record: object, where: Location) -> object:
        """The (renamed) record with its ``output`` answer and ``choices`` read as labels."""
        if not isinstance(record, dict):
            return record
        record = dict(record)
        if not absent(record.get("output")):
            record["output"] = self._label(record["output"], "output", where)
        choices = record.get("choices")
        if isinstance(choices, list):
            record["choices"] = [c if absent(c) else self._label(c, "choices", where)
                                 for c in choices]
        elif isinstance(choices, str) and self.label_names:
            record["choices"] = "|".join(str(self._label(c, "choices", where))
                                         for c in choices.split("|") if c.strip())
        return record

    def _label(self, value: object, key: str, where: Location) -> object:
        text = label_text(value)
        if self.label_names:
            if text in self.label_names:
                return self.label_names[text]
            if value in self.label_names.values():
                return value
            raise where.error(f"field '{key}' is {value!r}, a value --label-names does not name "
                              f"(it names {', '.join(self.label_names)}); add {text}=<label> to "
                              "--label-names or fix the record.")
        if isinstance(value, float) and text is None:
            raise where.error(f"field '{key}' is the number {value!r}; answers are compared as "
                              "text, so only whole numbers are read as labels: write it as "
                              "text, or name each value with --label-names.")
        if isinstance(value, str) or text is None:
            return value  # text as it is; other types are reported by the layout checks
        return text
