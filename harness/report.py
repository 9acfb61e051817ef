"""Plain-text tables of stored results (the session summary printed after a pytest run)."""

from __future__ import annotations

from pathlib import Path

from harness.session import COST_METRICS
from harness.store import Store

SUMMARY_METRICS_LIMIT = 5
SUMMARY_FIRST = ("accuracy", "macro_f1", "gen_accuracy", "f1", "recall_at_k",
                 "new_facts_after", "old_facts_after")
"""Headline metrics, shown first when recorded; other quality metrics fill the rest."""
SUMMARY_COST = ("train_seconds", "trainable_params", "artifact_bytes")
"""Cost columns shown after the quality metrics (all of them are in the database)."""


def _cell(value: float, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def session_table(store: Store, session: str, path: Path) -> str:
    """Approach x metric table (with 95% CIs) for the runs of ``session``.

    Per-class metrics (names with ``[``) are left to the dashboard to keep the table narrow.
    """
    runs = store.query(
        "SELECT id, approach, task, model, budget, seed, status, info_json FROM runs "
        "WHERE session = ? ORDER BY id", (session,),
    )
    if not runs:
        return f"no runs recorded; results database: {path.resolve()}"
    metrics = store.query(
        "SELECT m.run_id, m.name, m.value, m.ci_low, m.ci_high FROM metrics m "
        "JOIN runs r ON r.id = m.run_id WHERE r.session = ? AND instr(m.name, '[') = 0 "
        "ORDER BY m.id", (session,),
    )
    recorded = list(dict.fromkeys(row["name"] for row in metrics))
    quality = sorted((n for n in recorded if n not in COST_METRICS),
                     key=lambda n: SUMMARY_FIRST.index(n) if n in SUMMARY_FIRST else 99)
    quality = quality[:SUMMARY_METRICS_LIMIT]
    names = quality + [n for n in SUMMARY_COST if n in recorded]
    cells = {(row["run_id"], row["name"]): _cell(row["value"], row["ci_low"], row["ci_high"])
             for row in metrics}
    header = ["approach", "status", *names]
    table = [header] + [
        [run["approach"], run["status"], *(cells.get((run["id"], n), "-") for n in names)]
        for run in runs
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    first = runs[0]
    context = (f"task={first['task']} model={first['model']} budget={first['budget']} "
               f"seed={first['seed']} (95% bootstrap CIs in brackets)")
    return "\n".join([context, *lines, f"results database: {path.resolve()} (session {session})"])
