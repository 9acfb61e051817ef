"""Static export of the leaderboard and the decision report, as Markdown or HTML.

    python -m reports.export --db results/tunebench.db --out report.html   # or report.md
    python -m reports.export --out report.html --margin 0.02 --alpha 0.05 \\
        --max-p95-ms 500 --max-cost-per-1k 0.1 --max-train-cost 1.0 \\
        --updatable-knowledge --min-forgetting -0.02

The decision report applies ``reports.decision``'s rule with the given margin, alpha and
requirements (``--help`` explains each) and shows the requirements, the exclusions and each
candidate's paired difference from the best (CI, McNemar p). The format follows the
extension. The HTML is self-contained (inline CSS, no script, no
external resource), so it can be mailed or attached to a ticket; every stored string is
escaped. Same data functions and rule as the dashboard (``reports.data``,
``reports.analysis``, ``reports.decision``), one section per task.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports import data
from reports.analysis import fmt, headline_metrics, leaderboard
from reports.decision import (
    DEFAULT_ALPHA,
    DEFAULT_MARGIN,
    Recommendation,
    Requirements,
    headline_metric,
    report,
    verdict_table,
)
from reports.rule import check_settings

LEADERBOARD_METRICS = 6
CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top;
white-space:nowrap}.wrap{overflow-x:auto}
th{background:#f3f3f3}.rec{background:#eef8ef;border-left:4px solid #2e7d32;padding:.6rem}
.note{color:#555;font-size:.85rem}"""


@dataclass
class Section:
    """One task: its leaderboard, then its decision report (recommendation, notes on the
    requirements, exclusions and rule, and captioned tables)."""

    title: str
    leaderboard: pd.DataFrame
    leaderboard_note: str
    decision_title: str = "Decision report"
    recommendation: str | None = None
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


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


def decision_part(found: Recommendation | None, requirements: Requirements
                  ) -> tuple[str | None, list[str], list[tuple[str, pd.DataFrame]]]:
    """The recommendation sentence, the notes (requirements, exclusions, rule) and the
    verdict table of one decision report."""
    wanted = requirements.describe()
    notes = [f"Requirements: {'; '.join(wanted)}." if wanted else
             "Requirements: none set (see --max-p95-ms, --max-cost-per-1k, "
             "--max-train-cost, --updatable-knowledge, --min-forgetting)."]
    if found is None:
        return None, [*notes, "No accuracy or gen_accuracy recorded: no recommendation."], []
    notes += [f"{exclusion}." for exclusion in found.excluded]
    notes.append(f"Rule applied: {found.rule}.")
    caption = (f"Each candidate against the best on {found.metric}: paired difference "
               "(95% paired-bootstrap CI) and McNemar's exact p on the shared eval items; "
               "CI overlap where per-item rows are missing.")
    table = verdict_table(found).astype(str) if found.considered or found.excluded else None
    return found.sentence, notes, [] if table is None else [(caption, table)]


def sections(conn: sqlite3.Connection, *, requirements: Requirements | None = None,
             margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA) -> list[Section]:
    """Per task: the leaderboard (latest run of every candidate) and the decision report for
    the model/budget/seed of the task's latest run, under ``requirements`` and the rule's
    ``margin`` and ``alpha``."""
    requirements = requirements or Requirements()
    out = []
    for task in data.filter_options(conn)["task"]:
        long = data.metrics(conn, filters={"task": [task]})
        long = long[long["train_examples"].isna()]
        if long.empty:
            continue
        board, chosen = leaderboard_cells(long)
        section = Section(f"Task {task}", board, (
            f"Leaderboard: 95% CIs in brackets; 'tied with best' on {chosen} means the "
            "interval overlaps the best candidate's (not shown to differ; the decision "
            "report below uses a paired test instead)."))
        latest = data.scope_options(conn, task)["latest"]
        narrow = long[(long["model"] == latest["model"]) & (long["budget"] == latest["budget"])
                      & (long["seed"] == latest["seed"])]
        section.decision_title = (f"Decision report (model {latest['model']}, budget "
                                  f"{latest['budget']}, seed {latest['seed']}: the task's "
                                  "latest run)")
        configs = data.run_configs(conn, narrow["run_id"].unique().tolist())
        table, found, _ = report(
            narrow, configs, requirements=requirements, margin=margin, alpha=alpha,
            items=lambda suite, ids: data.correctness_by_run(conn, ids, suite))
        section.recommendation, section.notes, section.tables = decision_part(
            found, requirements)
        section.tables.append(("What was measured, per aspect.", table.astype(str)))
        out.append(section)
    return out


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(table: pd.DataFrame) -> list[str]:
    return [f"| {' | '.join(map(_md_cell, table.columns))} |",
            f"|{'---|' * len(table.columns)}",
            *(f"| {' | '.join(map(_md_cell, row))} |" for row in table.to_numpy()), ""]


def to_markdown(title: str, parts: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for part in parts:
        lines += [f"## {part.title}", "", *_md_table(part.leaderboard), part.leaderboard_note,
                  "", f"### {part.decision_title}", ""]
        if part.recommendation:
            lines += [f"**Recommendation:** {_md_cell(part.recommendation)}", ""]
        lines += [*(f"- {_md_cell(note)}" for note in part.notes), ""]
        for caption, table in part.tables:
            lines += [caption, "", *_md_table(table)]
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
        body += [f"<h2>{html.escape(part.title)}</h2>", _html_table(part.leaderboard),
                 f'<p class="note">{html.escape(part.leaderboard_note)}</p>',
                 f"<h3>{html.escape(part.decision_title)}</h3>"]
        if part.recommendation:
            body.append(f'<p class="rec"><b>Recommendation:</b> '
                        f"{html.escape(part.recommendation)}</p>")
        body.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in part.notes)
                    + "</ul>")
        for caption, table in part.tables:
            body += [f'<p class="note">{html.escape(caption)}</p>', _html_table(table)]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def export(db: Path, out: Path, *, requirements: Requirements | None = None,
           margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA) -> str:
    """Write the report for ``db`` to ``out`` (``.md`` Markdown, else HTML); returns the
    format written. Raises ``LookupError`` when the database has no runs."""
    check_settings(margin, alpha)
    conn = data.connect(db)
    try:
        with data.snapshot(conn):  # one state of the file, if a runner writes meanwhile
            if data.run_count(conn) == 0:
                raise LookupError(f"{db} has no runs")
            parts = sections(conn, requirements=requirements, margin=margin, alpha=alpha)
    finally:
        conn.close()
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = f"tunebench report: {db.name} ({stamp})"
    markdown = out.suffix.lower() in {".md", ".markdown"}
    out.write_text(to_markdown(title, parts) if markdown else to_html(title, parts),
                   encoding="utf-8")
    return "markdown" if markdown else "html"


def bounded(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
            what: str = "") -> Callable[[str], float]:
    """An argparse ``type``: a finite float within ``low``..``high`` (open ends excluded),
    else an error naming the range and what the value means."""
    span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
        if not math.isfinite(value) or not inside:
            raise argparse.ArgumentTypeError(
                f"expected a number in {span}{f' ({what})' if what else ''}, got {text!r}")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    """The command line (``python -m reports.export --help``)."""
    cli = argparse.ArgumentParser(
        prog="python -m reports.export",
        description="Export the leaderboard and decision report of a results database. "
        "The decision rule: requirements exclude candidates first; the best remaining "
        "candidate on the headline metric (accuracy, else gen_accuracy) is compared with "
        "each other one on the same eval items (paired bootstrap CI, McNemar's exact test); "
        "a candidate is good enough when the difference is not significant (p >= --alpha) "
        "and no worse than -(--margin); the cheapest kind of adaptation among them is "
        "recommended. Without per-item rows a candidate is compared by CI overlap, and the "
        "report says so.")
    cli.add_argument("--db", type=Path, default=None,
                     help=f"results database (default: ${data.ENV_VAR} or {data.DEFAULT_DB})")
    cli.add_argument("--out", type=Path, required=True,
                     help="output file; .md for Markdown, anything else for HTML")
    rule = cli.add_argument_group("the rule")
    rule.add_argument("--margin", type=bounded(0, 1, high_open=True, what="absolute accuracy"),
                      default=DEFAULT_MARGIN,
                      help="accuracy (absolute, 0.02 = 2 points) a cheaper candidate may "
                      "lose against the best and still be good enough (default: %(default)s)")
    rule.add_argument("--alpha", type=bounded(0, 1, low_open=True, high_open=True,
                                              what="significance level"),
                      default=DEFAULT_ALPHA,
                      help="significance level of the paired test: a difference with "
                      "McNemar p < alpha rules a candidate out (default: %(default)s)")
    needs = cli.add_argument_group(
        "requirements", "exclude candidates before the rule; a candidate lacking the metric "
        "a requirement reads is excluded as 'not measured' (default: no requirement)")
    needs.add_argument("--max-p95-ms", type=bounded(0, math.inf, what="milliseconds"),
                       metavar="MS", help="largest acceptable 95th-percentile request "
                       "latency, latency_p95_ms (suites/test_latency.py)")
    needs.add_argument("--max-cost-per-1k", type=bounded(0, math.inf, what="a price"),
                       metavar="PRICE", help="largest acceptable serving cost of 1,000 "
                       "requests, cost_per_1k_requests (suites/test_latency.py)")
    needs.add_argument("--max-train-cost", type=bounded(0, math.inf, what="a price"),
                       metavar="PRICE", help="largest acceptable training cost, train_cost "
                       "(suites/test_latency.py)")
    needs.add_argument("--updatable-knowledge", action="store_true",
                       help="knowledge must be updatable without retraining: "
                       "reads_documents = 1 and new_facts_after > old_facts_after where "
                       "recorded (suites/test_knowledge_update.py)")
    needs.add_argument("--min-forgetting", type=bounded(-1, 1, what="an accuracy change"),
                       metavar="DELTA", help="smallest acceptable forgetting_delta, the paired "
                       "accuracy change on general probes vs the base model; -0.02 allows "
                       "losing 2 points (suites/test_forgetting.py)")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    db = args.db or data.resolve_path([], os.environ)
    requirements = Requirements(args.max_p95_ms, args.max_cost_per_1k, args.max_train_cost,
                                args.updatable_knowledge, args.min_forgetting)
    try:
        kind = export(db, args.out, requirements=requirements, margin=args.margin,
                      alpha=args.alpha)
    except (FileNotFoundError, LookupError) as error:
        print(f"{error}. Fill it first: `{data.FILL_HINT[0]}` or `{data.FILL_HINT[1]}`.",
              file=sys.stderr)
        return 1
    print(f"wrote {kind} report to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
