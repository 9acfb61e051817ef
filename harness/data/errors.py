"""What every part of :mod:`harness.data` reports with: the error and warning classes, where a
record came from (:class:`Location`), and what counts as a missing value."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """Unusable data; the message names the file, the line or row, the field and the fix."""

    user_terms: bool = False
    """Whether the message already names the user's columns rather than the layout fields
    (``harness.data.mapping.renamed``), so it is not renamed twice."""


class DataWarning(UserWarning):
    """The data was usable but was changed on load (for example, duplicates were dropped) or
    was read in a way the user may not expect (mixed layouts, answers that almost look like
    labels)."""


@dataclass(frozen=True)
class Location:
    """A record's place: file (or Hub split) name and line (or row) number."""

    file: str
    line: int
    unit: str = "line"  # "row" for Parquet files and Hub datasets

    def error(self, message: str) -> DataError:
        at = f":{self.line}" if self.unit == "line" else f" row {self.line}"
        return DataError(f"{self.file}{at}: {message}")


def type_name(value: object) -> str:
    """The type of ``value`` as an error message names it (``null``, ``int``, ``list``...)."""
    return "null" if value is None else type(value).__name__


def absent(value: object) -> bool:
    """Whether a field value counts as missing: null, NaN or blank text."""
    return value is None or value != value or (isinstance(value, str) and not value.strip())
