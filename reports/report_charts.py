"""The dashboard's charts for the static HTML report, drawn as inline SVG.

Each task of ``reports.export``'s report gets the charts the dashboard pages draw by default,
built by the same functions (``reports.charts``) from the same data functions
(``reports.data``, ``reports.analysis``): the leaderboard with CI whiskers
(``app_pages/leaderboard.py``), the Pareto view (``app_pages/pareto.py``), forgetting
(``app_pages/forgetting.py``), latency (``app_pages/latency.py``) and training curves
(``app_pages/curves.py``). The leaderboard chart covers the task's leaderboard; the others
the decision report's scope (the model, budget and seed of the task's latest run, where the
pages open too). A chart without data becomes a one-line note.

SVG comes from vl-convert (Vega-Lite compiled and rendered by Vega inside an embedded
JavaScript runtime; no browser, no network: ``allowed_base_urls=[]`` forbids data URLs, and
text is measured with the fonts vl-convert bundles or finds on the machine, never fetched).
The SVG keeps its text as ``<text>`` elements, escaped by Vega's SVG renderer, so the page
stays one file with no script. The first conversion starts the runtime (about half a second);
each chart after it takes tens of milliseconds.
"""

from __future__ import annotations

import html
import itertools
import re
import sqlite3
from dataclasses import dataclass

import altair as alt
import pandas as pd
import vl_convert

from reports import data
from reports.analysis import (
    higher_is_better,
    metric_direction,
    names_by_run,
    pareto_table,
)
from reports.charts import (
    bars_with_ci,
    curves_chart,
    latency_distribution_chart,
    pareto_chart,
)

WIDTH = 620
"""Width of a chart's plotting area in pixels; the page scales a wider SVG down to fit."""
CHART_LIMIT = 40
"""Most candidates the leaderboard chart shows (as on the dashboard's leaderboard page)."""
PARETO_X = ("latency_p50_ms", "train_cost")
"""Cost axes of the Pareto views, each against the headline metric."""
FORGETTING = ["forgetting_delta", "forgetting_delta_raw", "interference_delta"]
QUANTILES = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
LATENCY_SAMPLES = 500
"""Per-request latencies drawn per candidate for the distribution (the page draws 2,000)."""


@dataclass
class Figure:
    """One chart of a report section, or the note that replaces it when there is no data."""

    title: str
    chart: alt.TopLevelMixin | None
    note: str


def _named(rows: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    return rows.assign(candidate=rows["run_id"].map(names))


def _sized(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return chart.properties(width=WIDTH)


def leaderboard_figure(long: pd.DataFrame, chosen: str) -> Figure:
    """``chosen`` per candidate of the task's leaderboard, with 95% CI whiskers."""
    rows = _named(long[long["name"] == chosen], names_by_run(long))
    title = f"Leaderboard: {chosen}"
    if rows.empty:
        return Figure(title, None, f"No chart: no candidate recorded {chosen}.")
    if len(rows) > CHART_LIMIT:
        return Figure(title, None, f"No chart: {len(rows)} candidates, more than the "
                      f"{CHART_LIMIT} a chart shows legibly (see the table).")
    return Figure(title, _sized(bars_with_ci(rows, chosen)),
                  "Bars are the values, whiskers their 95% CIs.")


def pareto_figures(scoped: pd.DataFrame, y: str | None) -> list[Figure]:
    """The headline metric ``y`` against each cost axis of :data:`PARETO_X`, the frontier
    highlighted; each metric read in its recorded direction."""
    if y is None:
        return [Figure("Pareto view", None, "No chart: no accuracy or gen_accuracy recorded.")]
    out = []
    y_higher = metric_direction(y, higher_is_better(scoped, y))
    for x in PARETO_X:
        x_higher = metric_direction(x, higher_is_better(scoped, x))
        table = pareto_table(scoped, x, y, x_higher, y_higher)
        title = f"Pareto view: {y} vs {x}"
        if table.empty:
            out.append(Figure(title, None, f"No chart: no candidate recorded both {x} and "
                              f"{y} (suites/test_latency.py records {x})."))
            continue
        front = table[table["frontier"]]["candidate"].tolist()
        out.append(Figure(title, _sized(pareto_chart(table, x, y, x_higher, y_higher)),
                          f"Pareto frontier ({len(front)} of {len(table)}): "
                          f"{', '.join(front)}. Whiskers are 95% CIs where recorded."))
    return out


def forgetting_figure(scoped: pd.DataFrame, names: dict[int, str]) -> Figure:
    """Probe accuracy change against the base model per candidate (with 95% CIs)."""
    rows = scoped[(scoped["suite"] == "forgetting") & scoped["name"].isin(FORGETTING)]
    title = "Forgetting: probe accuracy change vs the base model"
    if rows.empty:
        return Figure(title, None, "No chart: no forgetting measured "
                      "(suites/test_forgetting.py, e.g. `--approach=lora`).")
    chart = bars_with_ci(_named(rows, names), "probe accuracy change vs the base model",
                         metric_color=True)
    return Figure(title, _sized(chart), "Below zero: the candidate lost general ability; "
                  "a loss counts when its whole 95% CI is below zero.")


def latency_figures(conn: sqlite3.Connection, scoped: pd.DataFrame,
                    names: dict[int, str]) -> list[Figure]:
    """Latency quantiles per candidate and the per-request latency distribution."""
    rows = scoped[scoped["suite"].isin(["latency", "prepare"]) & scoped["name"].isin(QUANTILES)]
    hint = "suites/test_latency.py, e.g. `--approach=zero-shot,lora`"
    title = "Latency: p50, p95 and p99 per request"
    if rows.empty:
        return [Figure(title, None, f"No chart: no latency measured ({hint}).")]
    quantiles = Figure(title, _sized(bars_with_ci(_named(rows, names), "ms per request",
                                                  metric_color=True)),
                       "Whiskers are 95% CIs of each quantile.")
    samples = data.latency_samples(conn, sorted(set(rows["run_id"])), LATENCY_SAMPLES)
    title = "Latency: per-request distribution"
    if samples.empty:
        return [quantiles, Figure(title, None, "No chart: no per-request latencies kept.")]
    return [quantiles, Figure(title, _sized(latency_distribution_chart(_named(samples, names))),
                              f"At most {LATENCY_SAMPLES} requests per candidate.")]


def curve_figures(conn: sqlite3.Connection, names: dict[int, str]) -> list[Figure]:
    """Training and validation curves of the candidates that trained, one chart per curve."""
    trained = sorted(set(names) & set(data.curve_run_ids(conn)))
    points = _named(data.curves(conn, trained), names)
    if points.empty:
        return [Figure("Training curves", None, "No chart: no candidate in this scope "
                       "recorded a training curve (approaches that train do, e.g. lora).")]
    return [Figure(f"Training curve: {name}", _sized(curves_chart(part, str(name))),
                   "Solid: training split; dashed: validation split.")
            for name, part in points.groupby("name")]


def scope_figures(conn: sqlite3.Connection, scoped: pd.DataFrame,
                  headline: str | None) -> list[Figure]:
    """The charts of one decision report's runs (``scoped``: one task, model, budget and
    seed): Pareto views on the ``headline`` metric, forgetting, latency, training curves."""
    names = names_by_run(scoped)
    return [*pareto_figures(scoped, headline), forgetting_figure(scoped, names),
            *latency_figures(conn, scoped, names), *curve_figures(conn, names)]


_TAG = re.compile(r"<[^<>]+>")
_CHART_IDS = itertools.count(1)


def to_svg(chart: alt.TopLevelMixin, prefix: str) -> str:
    """The chart as an SVG element to inline in HTML: no XML namespace declarations (the
    HTML parser puts ``<svg>`` in its namespace), and the ids Vega declares (clip paths)
    prefixed with ``prefix`` where declared and referenced, since several charts share one
    document. Only tags are rewritten, never the text of a label."""
    svg = vl_convert.vegalite_to_svg(chart.to_dict(), allowed_base_urls=[])
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg, count=2)
    declared = {found for tag in _TAG.findall(svg) for found in re.findall(r'\sid="([^"]+)"', tag)}
    if not declared:
        return svg
    uses = re.compile(rf'(\sid="|url\(#|href="#)({"|".join(map(re.escape, declared))})(?=[")])')
    return _TAG.sub(lambda tag: uses.sub(rf"\g<1>{prefix}-\g<2>", tag.group(0)), svg)


def figure_html(figure: Figure, prefix: str) -> str:
    """A ``<figure>`` with the chart's SVG and its caption, or a one-line note."""
    title = html.escape(figure.title)
    if figure.chart is None:
        return f'<p class="note"><b>{title}.</b> {html.escape(figure.note)}</p>'
    return (f'<figure role="img" aria-label="{title}">{to_svg(figure.chart, prefix)}'
            f"<figcaption>{title}. {html.escape(figure.note)}</figcaption></figure>")


def figures_html(figures: list[Figure]) -> str:
    """Every figure of a section in order, each with ids no other chart of the page uses."""
    return "".join(figure_html(figure, f"chart{next(_CHART_IDS)}") for figure in figures)
