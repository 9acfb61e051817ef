"""Hugging Face Hub datasets as task data, honouring the offline switches set at run time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from harness.data.mapping import RecordMapping
from harness.data.records import SPLIT_ALIASES, DataError, read_rows
from harness.tasks.base import Example


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


@contextmanager
def hub_offline_honoured() -> Iterator[None]:
    """``datasets`` and ``huggingface_hub`` read the offline switches once, at import; inside
    this block they honour switches set later (restored on exit)."""
    import datasets
    import huggingface_hub.constants as hub

    saved = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    if _hub_offline():
        datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = saved


def hub_splits(ref: str, mapping: RecordMapping | None = None) -> dict[str, list[Example]]:
    """The examples of Hub dataset ``ref`` (``owner/name[:config]``) by split, for the splits
    whose names are ``train``, ``validation``, ``eval`` or an alias, with the user's column and
    label ``mapping``; ``DataError`` if it cannot be loaded."""
    dataset_id, _, config = ref.partition(":")
    try:
        import datasets

        with hub_offline_honoured():
            loaded = datasets.load_dataset(dataset_id, config or None)
    except Exception as exc:
        raise DataError(f"hf:{ref}: the dataset could not be loaded ({type(exc).__name__}: "
                        f"{exc}). Check the name and the network; a local data file (.jsonl, "
                        ".csv, .parquet) works offline.") from exc
    parts: dict[str, list[Example]] = {}
    for name, table in loaded.items():
        split = SPLIT_ALIASES.get(name.lower())
        if split:
            label = f"{dataset_id}[{name}]"
            parts.setdefault(split, []).extend(
                read_rows(list(enumerate(table, 1)), label, "row", True, mapping))
    if not parts:
        raise DataError(f"hf:{ref}: no split named train, validation or eval (or an alias) "
                        f"among {list(loaded)}.")
    return parts
