"""The task made of a user's own data (``--task=PATH`` or ``hf:<id>``) and its options.

The options (``--set task.NAME=VALUE``; ``--columns`` and ``--label-names`` are shorthands)
change how the data is read and scored, so they change the examples and with them the data
hash every run and cached candidate is keyed by (``TaskData.fingerprint``). Reading is
:mod:`harness.data.load`'s work; this module only carries the options there. It imports the
approach contracts (for ``option``), so :mod:`harness.tasks` loads it on first use.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
from dataclasses import dataclass
from typing import ClassVar, Literal

from harness.core.approach import option
from harness.core.overrides import check_option
from harness.data.mapping import LAYOUT_FIELDS
from harness.tasks.base import Task, TaskConfig, TaskData


@dataclass
class DataFileConfig(TaskConfig):
    """Options of a data-file task (``--set task.NAME=VALUE``, or ``task.yaml`` in a data
    folder), besides every task's ``metric``."""

    labels: list[str] = option(
        [], "score as classification over these labels (comma-separated, e.g. "
        "negative,positive); a record whose answer is not one of them is an error. Default: "
        "decided from the data (see task.scoring).")
    scoring: Literal["auto", "classification", "generation"] = option(
        "auto", "auto: classification if the records share 'choices' or the answers look "
        "like labels (2-20 values, each at least twice), else free text; classification: the "
        "distinct answers are the labels; generation: free text, 'choices' ignored.")
    columns: dict[str, str] = option(
        {}, "your column names for the record fields, e.g. input=sentence,output=label "
        f"(fields: {', '.join(LAYOUT_FIELDS)}); input without instruction is the whole prompt. "
        "Same as --columns.")
    label_names: dict[str, str] = option(
        {}, "rename answer and choice values on load, e.g. 0=negative,1=positive; any other "
        "value is an error. Same as --label-names.")
    encoding: str | None = option(
        None, "text encoding of .jsonl/.json/.csv/.tsv files, e.g. cp1252 or latin-1. "
        "Default: UTF-8.")

    def __post_init__(self) -> None:
        super().__post_init__()
        distinct = set(self.labels)
        check_option(not self.labels or len(distinct) == len(self.labels) >= 2, "labels",
                     "give at least two labels, each once")
        check_option(not (self.labels and self.scoring == "generation"), "labels",
                     "labels score the task as classification; drop task.scoring=generation")
        for name in self.columns:
            close = difflib.get_close_matches(name, LAYOUT_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            check_option(name in LAYOUT_FIELDS, "columns",
                         f"{name!r} is not a record field{hint}; map your columns onto "
                         f"{', '.join(LAYOUT_FIELDS)}, e.g. input=sentence,output=label")
        for option_name, pairs in (("columns", self.columns), ("label_names", self.label_names)):
            check_option(all(k.strip() and v.strip() for k, v in pairs.items()), option_name,
                         "give every pair as name=value with both sides non-empty")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                check_option(False, "encoding", f"unknown encoding {self.encoding!r}; use a "
                             "Python codec name such as utf-8, cp1252, latin-1 or utf-16")


class DataFileTask(Task):
    """A task read from a user's file, folder or Hugging Face dataset (``harness.data``)."""

    name: ClassVar[str] = "file"
    description: ClassVar[str] = ("your own data: a JSONL/JSON/CSV/TSV/parquet file, a folder "
                                  "or hf:<id>")
    Config: ClassVar[type] = DataFileConfig

    def __init__(self, spec: str, config: DataFileConfig | None = None) -> None:
        self.spec = spec
        self.config = config or DataFileConfig()

    def load(self, seed: int) -> TaskData:
        from harness.data.load import load_task_data

        options = dataclasses.asdict(self.config)
        options.pop("metric")  # how candidates are compared, not how the data is read
        return load_task_data(self.spec, seed, **options)
