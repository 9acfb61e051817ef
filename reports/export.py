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
escaped. It also carries the dashboard's charts per task as inline SVG
(``reports.report_charts``); the Markdown has none, so it stays one pasteable file. Same
data functions and rule as the dashboard (``reports.data``, ``reports.analysis``,
``reports.decision``), one section per task.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports import data, example_data
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
from reports.report_charts import (
    Figure,
    figures_html,
    leaderboard_figure,
    scope_figures,
)
from reports.rule import check_settings

LEADERBOARD_METRICS = 6
CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#222}h1,h2,h3,p,li,figcaption{overflow-wrap:anywhere}
.wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.nb{white-space:nowrap}
th{background:#f3f3f3}.rec{background:#eef8ef;border-left:4px solid #2e7d32;padding:.6rem}
.note,figcaption{color:#555;font-size:.85rem}figure{margin:1.5rem 0}
figure svg{display:block;max-width:100%;height:auto}"""
"""Cells wrap at spaces, a bracketed CI never inside; a table still wider than the page
scrolls in its own box (``.wrap``), never the page; charts shrink to the page's width."""


@dataclass
class Section:
    """One task: its leaderboard (table, then chart), its decision report (recommendation,
    notes on the requirements, exclusions and rule, and captioned tables), then the charts
    of the decision report's runs (``reports.report_charts``; HTML only)."""

    title: str
    leaderboard: pd.DataFrame
    leaderboard_note: str
    decision_title: str = "Decision report"
    recommendation: str | None = None
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    leaderboard_chart: Figure | None = None
    charts_title: str = "Charts"
    charts: list[Figure] = field(default_factory=list)


def leaderboard_cells(long: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The leaderboard of one task as text cells (``value [low, high]``), ties marked on the
    headline metric; returns the table and the metric the ties are on."""
    names = list(dict.fromkeys(long["name"]))
    recorded = long["headline_metric"].tolist() if "headline_metric" in long else []
    chosen = headline_metric(names, recorded)
    shown = list(dict.fromkeys([*([chosen] if chosen else []),
                                *(n for n in headline_metrics() if n in names)]))
    shown = shown[:LEADERBOARD_METRICS] or names[:3]
    chosen = chosen or shown[0]
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
        return None, [*notes, "The task's headline metric was not recorded: no recommendation."], []
    notes += [f"{exclusion}." for exclusion in found.excluded]
    notes.append(f"Rule applied: {found.rule}.")
    caption = (f"Each candidate against the best on {found.metric}: paired difference "
               "(95% paired-bootstrap CI, whose lower bound decides) and McNemar's exact p on "
               "the shared eval items; a conservative interval from the two 95% CIs where "
               "per-item rows are missing.")
    table = verdict_table(found).astype(str) if found.considered or found.excluded else None
    return found.sentence, notes, [] if table is None else [(caption, table)]


def data_check_tables(conn: sqlite3.Connection, task: str) -> list[tuple[str, pd.DataFrame]]:
    """The data check's findings on the task's most recently checked data (``data_findings``),
    as one captioned table; none if its data was never checked."""
    found = data.data_findings(conn)
    found = found[found["task"] == task]
    if found.empty:
        return []
    latest = found[found["data_hash"] == found["data_hash"].iloc[0]]
    table = latest[["name", "count", "value", "summary"]].copy()
    table["value"] = table["value"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    caption = (f"Data check (data {latest['data_hash'].iloc[0][:12]}): what to review in the "
               "task's data, lower is better; the example rows are on the dashboard's Data "
               "check page.")
    return [(caption, table.astype(str))]


def sections(conn: sqlite3.Connection, *, requirements: Requirements | None = None,
             margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA,
             charts: bool = True) -> list[Section]:
    """Per task: the leaderboard (latest run of every candidate) and the decision report for
    the model/budget/seed of the task's latest run, under ``requirements`` and the rule's
    ``margin`` and ``alpha``; with ``charts``, the charts too (the HTML report's)."""
    requirements = requirements or Requirements()
    out = []
    for task in data.filter_options(conn)["task"]:
        long = data.metrics(conn, filters={"task": [task]})
        long = data.main_runs(long)
        if long.empty:
            continue
        board, chosen = leaderboard_cells(long)
        section = Section(f"Task {task}", board, (
            f"Leaderboard: 95% CIs in brackets; 'tied with best' on {chosen} means the "
            "interval overlaps the best candidate's (not shown to differ; the decision "
            "report below uses a paired test instead)."),
            leaderboard_chart=leaderboard_figure(long, chosen) if charts else None)
        latest = data.scope_options(conn, task)["latest"]
        narrow = long[(long["model"] == latest["model"]) & (long["budget"] == latest["budget"])
                      & (long["seed"] == latest["seed"])]
        section.decision_title = (f"Decision report (model {latest['model']}, budget "
                                  f"{latest['budget']}, seed {latest['seed']}: the task's "
                                  "latest run)")
        configs = data.run_configs(conn, narrow["run_id"].unique().tolist())
        table, found, _ = report(
            narrow, configs, requirements=requirements, margin=margin, alpha=alpha,
            items=lambda suite, ids, value: example_data.item_scores_by_run(
                conn, ids, suite, value))
        section.recommendation, section.notes, section.tables = decision_part(
            found, requirements)
        section.tables.append(("What was measured, per aspect.", table.astype(str)))
        section.tables += data_check_tables(conn, task)
        section.charts_title = (f"Charts (model {latest['model']}, budget {latest['budget']}, "
                                f"seed {latest['seed']}, as the decision report)")
        if charts:
            section.charts = scope_figures(conn, narrow, found.metric if found else None)
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


def _html_cell(value: object) -> str:
    """Escaped text whose bracketed parts (a CI, a sweep point) never break across lines,
    and that may break after a ``/`` (model paths) or a ``+`` joining names (compositions
    such as ``lora+rag``)."""
    text = re.sub(r"(?<=\w)([/+])(?=\w)", r"\1<wbr>", html.escape(str(value)))
    return re.sub(r"\[[^\]]*\]", lambda part: f'<span class="nb">{part.group(0)}</span>',
                  text)


def _html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{_html_cell(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html_cell(v)}</td>" for v in row) + "</tr>"
                   for row in table.to_numpy())
    return (f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


def to_html(title: str, parts: list[Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for part in parts:
        body += [f"<h2>{html.escape(part.title)}</h2>", _html_table(part.leaderboard),
                 f'<p class="note">{html.escape(part.leaderboard_note)}</p>']
        if part.leaderboard_chart is not None:
            body.append(figures_html([part.leaderboard_chart]))
        body.append(f"<h3>{html.escape(part.decision_title)}</h3>")
        if part.recommendation:
            body.append(f'<p class="rec"><b>Recommendation:</b> '
                        f"{html.escape(part.recommendation)}</p>")
        body.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in part.notes)
                    + "</ul>")
        for caption, table in part.tables:
            body += [f'<p class="note">{html.escape(caption)}</p>', _html_table(table)]
        if part.charts:
            body += [f"<h3>{html.escape(part.charts_title)}</h3>", figures_html(part.charts)]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


FORMATS = {
    "html": "one self-contained HTML page (inline CSS, inline SVG charts, no script), per "
            "task the leaderboard with 95% CIs, the decision report and the dashboard's charts "
            "(--out: the file)",
    "markdown": "the same report as Markdown (--out: the file)",
    "lm-eval-json": "one lm-evaluation-harness results file per candidate (the latest finished "
                    "run of each approach per task/model/budget/seed) as lm-eval writes them, "
                    "OUT/<model>/results_<date>.json, with the headline metric as acc,none or "
                    "exact_match,none and lm-eval's stderr, and every other tunebench metric "
                    "(CIs, forgetting, latency, cost) and the provenance under 'tunebench' "
                    "(--out: a folder)",
    "model-card": "a Hugging Face model card (README.md with YAML metadata and model-index, "
                  "then results with 95% CIs, forgetting, latency, cost, training config, data "
                  "hash, how to load) for every trained candidate, written into its cached "
                  "folder, whose checksum manifest is updated so it still reloads from the "
                  "cache (--out DIR: into DIR/<run-id>-<approach>/README.md instead)",
    "mlflow": "every run mirrored into MLflow tracking, as --mlflow does while running "
              "($MLFLOW_TRACKING_URI, else sqlite:///<db folder>/mlflow.db; experiment "
              "$MLFLOW_EXPERIMENT_NAME, else tunebench/<task>); runs already there are "
              "skipped; needs pip install 'tunebench[mlflow]' (--out: not used)",
}
"""Export formats and what each writes (``--help`` shows them)."""
FOLDER_FORMATS = ("lm-eval-json", "model-card")


def format_of(out: Path | None, chosen: str | None = None) -> str:
    """The format asked for, else the one ``out``'s extension implies (``.md``/``.markdown``
    Markdown, anything else HTML)."""
    if chosen:
        return chosen
    markdown = out is not None and out.suffix.lower() in {".md", ".markdown"}
    return "markdown" if markdown else "html"


def export_files(db: Path, kind: str, out: Path | None) -> tuple[list[Path], list[str]]:
    """Write the lm-eval-json or model-card export of ``db`` (``out``: the folder, optional
    for model cards); returns the files written and a note per candidate left out. Raises
    ``FileNotFoundError`` without the database, ``LookupError`` when it has nothing to
    export, ``NotADirectoryError`` when ``out`` is a file."""
    from reports import lmeval_json, model_card  # lm-eval, and the trainer's cache code

    conn = data.connect(db)
    try:
        if kind == "lm-eval-json":
            if out is None:
                raise ValueError("lm-eval-json needs --out, a folder")
            return lmeval_json.export(conn, db, out)
        if kind == "model-card":
            return model_card.export(conn, db, out)
        raise ValueError(f"{kind!r} is no file-set format; use one of {FOLDER_FORMATS}")
    finally:
        conn.close()


def export_mlflow(db: Path) -> int:
    """``--format mlflow``: the runs of ``db`` not yet in MLflow, logged whole
    (:func:`plugins.mlflow_tracking.log_results_file`); returns the exit status."""
    from plugins.mlflow_tracking import MlflowUnavailable, log_results_file, tracking_uri

    try:
        logged = log_results_file(db)
    except MlflowUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    print(f"mlflow: {len(logged)} run(s) logged to {tracking_uri(db)}")
    return 0


def export(db: Path, out: Path, *, format: str | None = None,
           requirements: Requirements | None = None,
           margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA) -> str:
    """Write the report for ``db`` to ``out`` (``format`` ``html`` or ``markdown``; by
    default ``.md`` Markdown, else HTML); returns the format written. Raises ``LookupError``
    when the database has no runs. The folder formats are :func:`export_files`'."""
    kind = format_of(out, format)
    if kind not in {"html", "markdown"}:
        raise ValueError(f"export() writes html or markdown; {kind} is export_files()'")
    check_settings(margin, alpha)
    conn = data.connect(db)
    try:
        with data.snapshot(conn):  # one state of the file, if a runner writes meanwhile
            if data.run_count(conn) == 0:
                raise LookupError(f"{db} has no runs")
            parts = sections(conn, requirements=requirements, margin=margin, alpha=alpha,
                             charts=kind == "html")
    finally:
        conn.close()
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = f"tunebench report: {db.name} ({stamp})"
    markdown = kind == "markdown"
    out.write_text(to_markdown(title, parts) if markdown else to_html(title, parts),
                   encoding="utf-8")
    return kind


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
        description="Export the leaderboard and decision report of a results database "
        "(html, markdown), or its candidates as lm-eval results files (lm-eval-json) or "
        "Hugging Face model cards (model-card); the rule and requirements below apply to "
        "the report. The decision rule: requirements exclude candidates first; the best remaining "
        "candidate on the task's headline metric (accuracy for classification, f1 or the "
        "user's task.metric for free text) is compared with "
        "each other one on the same eval items (95% paired bootstrap CI; McNemar's exact "
        "test, or a paired randomisation test for a graded metric such as chrf, as evidence); "
        "a candidate is good enough when it is shown non-inferior: the CI's lower bound is "
        ">= -(--margin) (Wellek, 2010); the cheapest kind of adaptation among them is "
        "recommended, and the sentence names its measured pitfalls (forgetting, perplexity, "
        "overfitting). Without per-item rows a candidate is judged on a conservative bound "
        "from the two 95% CIs, and the report says so.")
    cli.add_argument("--db", type=Path, default=None,
                     help=f"results database (default: ${data.ENV_VAR} or {data.DEFAULT_DB})")
    cli.add_argument("--format", choices=list(FORMATS), default=None,
                     help="what to write (default: from --out's extension, markdown for "
                     ".md, else html). " + " ".join(
                         f"{name}: {text}." for name, text in FORMATS.items()).replace("%", "%%"))
    cli.add_argument("--out", type=Path, default=None,
                     help="where: the file for html/markdown (required), the folder for "
                     "lm-eval-json (required), for model-card an optional folder to put "
                     "the cards in instead of the candidates' folders")
    rule = cli.add_argument_group("the rule")
    rule.add_argument("--margin", type=bounded(0, 1, high_open=True, what="absolute accuracy"),
                      default=DEFAULT_MARGIN,
                      help="non-inferiority margin: accuracy (absolute, 0.02 = 2 points) a "
                      "cheaper candidate may lose against the best and still be good enough; "
                      "the lower bound of the 95%% CI of its paired difference must be >= "
                      "-margin (default: %(default)s)")
    rule.add_argument("--alpha", type=bounded(0, 1, low_open=True, high_open=True,
                                              what="significance level"),
                      default=DEFAULT_ALPHA,
                      help="level at which the paired test's p-value (McNemar's) is called "
                      "significant in the evidence; it does not decide, the CI's lower bound "
                      "does (default: %(default)s)")
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
    cli = parser()
    args = cli.parse_args(argv)
    kind = format_of(args.out, args.format)
    if kind == "mlflow":
        try:
            return export_mlflow(args.db or data.resolve_path([], os.environ))
        except FileNotFoundError as error:
            print(f"{error}. Fill it first: `{data.FILL_HINT[0]}` or `{data.FILL_HINT[1]}`.",
                  file=sys.stderr)
            return 1
    if args.out is None and kind != "model-card":
        cli.error(f"--out is required for --format {kind} (the "
                  f"{'folder' if kind in FOLDER_FORMATS else 'file'} to write)")
    if args.out is not None and kind in FOLDER_FORMATS and args.out.is_file():
        cli.error(f"--out {args.out} is a file; --format {kind} writes a folder of files: "
                  "give a folder path (it is created if missing)")
    if args.out is not None and kind not in FOLDER_FORMATS and args.out.is_dir():
        cli.error(f"--out {args.out} is a folder; --format {kind} writes one file: give a "
                  "file path")
    db = args.db or data.resolve_path([], os.environ)
    requirements = Requirements(args.max_p95_ms, args.max_cost_per_1k, args.max_train_cost,
                                args.updatable_knowledge, args.min_forgetting)
    written: list[Path] = []
    try:
        if kind in FOLDER_FORMATS:
            written, skipped = export_files(db, kind, args.out)
        else:
            export(db, args.out, format=kind, requirements=requirements, margin=args.margin,
                   alpha=args.alpha)
    except data.NoTrainedCandidates as error:
        print(f"{error}.", file=sys.stderr)
        return 1
    except (FileNotFoundError, LookupError) as error:
        print(f"{error}. Fill it first: `{data.FILL_HINT[0]}` or `{data.FILL_HINT[1]}`.",
              file=sys.stderr)
        return 1
    if kind not in FOLDER_FORMATS:
        print(f"wrote {kind} report to {args.out}")
        return 0
    for note in skipped:
        print(f"skipped {note}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    print(f"{kind}: {len(written)} file(s) written, {len(skipped)} candidate(s) skipped")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
