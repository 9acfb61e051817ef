"""Static export of the leaderboard and the decision report, as Markdown or HTML.

    python -m reports.export --db results/tunebench.db --out report.html   # or report.md

The format follows the extension. The HTML is self-contained (inline CSS, no script, no
external resource), so it can be mailed or attached to a ticket; every stored string is
escaped. Same data functions and rule as the dashboard (``reports.data``,
``reports.analysis``, ``reports.decision``), one section per task.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports import data
from reports.analysis import fmt, headline_metrics, leaderboard
from reports.decision import headline_metric, report

LEADERBOARD_METRICS = 6
CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top;
white-space:nowrap}.wrap{overflow-x:auto}
th{background:#f3f3f3}.rec{background:#eef8ef;border-left:4px solid #2e7d32;padding:.6rem}
.note{color:#555;font-size:.85rem}"""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    recommendation: str | None = None
    decision_title: str = "Decision report"


def leaderboard_cells(long: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The leaderboard of one task as text cells (``value [low, high]``), ties marked on the
    headline metric; returns the table and the metric the ties are on."""
    names = list(dict.fromkeys(long["name"]))
    shown = [n for n in headline_metrics() if n in names][:LEADERBOARD_METRICS] or names[:3]
    chosen = headline_metric(names) or shown[0]
    table = leaderboard(long, shown, chosen)
    for name in shown:
        if f"{name} CI" in table:
            table[name] = [fmt(v) if ci == "-" else f"{fmt(v)} {ci}"
                           for v, ci in zip(table[name], table[f"{name} CI"], strict=True)]
    if "tied with best" in table:
        table["tied with best"] = table["tied with best"].map({True: "yes", False: ""})
    keep = ["candidate", "model", "budget", "seed", "status", *shown, "tied with best"]
    return table[[c for c in keep if c in table]].fillna("-").astype(str), chosen


def sections(conn: sqlite3.Connection) -> list[Section]:
    """Per task: the leaderboard (latest run of every candidate) and the decision report for
    the model/budget/seed of the task's latest run."""
    out = []
    for task in data.filter_options(conn)["task"]:
        long = data.metrics(conn, filters={"task": [task]})
        long = long[long["train_examples"].isna()]
        if long.empty:
            continue
        board, chosen = leaderboard_cells(long)
        section = Section(f"Task {task}", tables=[board], paragraphs=[
            f"Leaderboard: 95% CIs in brackets; 'tied with best' on {chosen} means the "
            "interval overlaps the best candidate's (not shown to differ)."])
        latest = data.scope_options(conn, task)["latest"]
        narrow = long[(long["model"] == latest["model"]) & (long["budget"] == latest["budget"])
                      & (long["seed"] == latest["seed"])]
        section.decision_title = (f"Decision report (model {latest['model']}, budget "
                                  f"{latest['budget']}, seed {latest['seed']}: the task's "
                                  "latest run)")
        configs = data.run_configs(conn, narrow["run_id"].unique().tolist())
        table, found, _ = report(narrow, configs)
        if found is not None:
            section.recommendation = found.sentence
            section.paragraphs.append(f"Rule applied: {found.rule}.")
        else:
            section.paragraphs.append("No accuracy or gen_accuracy recorded: no recommendation.")
        section.tables.append(table.astype(str))
        out.append(section)
    return out


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, parts: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for part in parts:
        lines += [f"## {part.title}", ""]
        for k, table in enumerate(part.tables):
            if k == 1:
                lines += [f"### {part.decision_title}", ""]
                if part.recommendation:
                    lines += [f"**Recommendation:** {part.recommendation}", ""]
            lines += [f"| {' | '.join(map(_md_cell, table.columns))} |",
                      f"|{'---|' * len(table.columns)}"]
            lines += [f"| {' | '.join(map(_md_cell, row))} |" for row in table.to_numpy()]
            lines += ["", *(p + "\n" for p in part.paragraphs[k:k + 1])]
    return "\n".join(lines).rstrip() + "\n"


def _html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.to_numpy())
    return (f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


def to_html(title: str, parts: list[Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for part in parts:
        body.append(f"<h2>{html.escape(part.title)}</h2>")
        for k, table in enumerate(part.tables):
            if k == 1:
                body.append(f"<h3>{html.escape(part.decision_title)}</h3>")
                if part.recommendation:
                    body.append(f'<p class="rec"><b>Recommendation:</b> '
                                f"{html.escape(part.recommendation)}</p>")
            body.append(_html_table(table))
            body += [f'<p class="note">{html.escape(p)}</p>'
                     for p in part.paragraphs[k:k + 1]]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def export(db: Path, out: Path) -> str:
    """Write the report for ``db`` to ``out`` (``.md`` Markdown, else HTML); returns the
    format written. Raises ``LookupError`` when the database has no runs."""
    conn = data.connect(db)
    try:
        if data.run_count(conn) == 0:
            raise LookupError(f"{db} has no runs")
        parts = sections(conn)
    finally:
        conn.close()
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = f"tunebench report: {db.name} ({stamp})"
    markdown = out.suffix.lower() in {".md", ".markdown"}
    out.write_text(to_markdown(title, parts) if markdown else to_html(title, parts),
                   encoding="utf-8")
    return "markdown" if markdown else "html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the leaderboard and decision report.")
    parser.add_argument("--db", type=Path, default=None,
                        help=f"results database (default: ${data.ENV_VAR} or {data.DEFAULT_DB})")
    parser.add_argument("--out", type=Path, required=True,
                        help="output file; .md for Markdown, anything else for HTML")
    args = parser.parse_args(argv)
    db = args.db or data.resolve_path([], os.environ)
    try:
        kind = export(db, args.out)
    except (FileNotFoundError, LookupError) as error:
        print(f"{error}. Fill it first: `{data.FILL_HINT[0]}` or `{data.FILL_HINT[1]}`.",
              file=sys.stderr)
        return 1
    print(f"wrote {kind} report to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
