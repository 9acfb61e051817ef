"""What the benchmark report scripts share: a read-only connection to a results database and
a value written with its 95% CI."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened read-only, rows addressable by column name."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def with_ci(value: float, low: float | None, high: float | None, signed: bool = False) -> str:
    """``0.812 [0.770, 0.850]`` (``+0.012 [...]`` when ``signed``); the value alone without CI."""
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if low is None or high is None:
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"
