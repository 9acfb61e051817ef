"""Leaderboard: approach x task x metric with 95% CIs, filterable, statistically tied marked.

Loads ``metrics`` joined with ``runs`` for the chosen metrics only (never ``examples``), so it
stays fast on large databases (benchmarks/bench_dashboard.py). Ties: ``tied_groups`` from
``harness.measure.compare`` on the chosen metric, within each task/model/budget.
"""

from __future__ import annotations

import streamlit as st

from reports import ui
from reports.analysis import headline_metrics, higher_is_better, leaderboard, metric_direction
from reports.charts import bars_with_ci
from reports.data import main_runs

CHART_LIMIT = 40
SIDE_METRIC = "primary_accuracy"

st.title("Leaderboard")
results = ui.results_or_stop()
filters = ui.scope(results, "leaderboard", all_tasks=True)
catalog = results.load("metric_catalog")
names = list(dict.fromkeys(catalog["name"]))
if not names:
    ui.nothing_recorded("metrics", "Run the suites: `pytest suites/ --approach=zero-shot`.")
    st.stop()
recorded = [n for n in results.load("run_headlines", filters=filters) if n in names]
defaults = list(dict.fromkeys([*recorded, *(n for n in headline_metrics() if n in names)]))[:6]
defaults = defaults or names[:6]
left, middle, right = st.columns([4, 2, 2])
shown = left.multiselect("metrics", names, default=defaults, key="leaderboard-metrics")
shown = shown or defaults
chosen = middle.selectbox("rank and mark ties by", shown, key="leaderboard-chosen",
                          help="first: the task's headline metric (--set task.metric=NAME)")
latest = right.checkbox("latest run of each candidate only", value=True,
                        key="leaderboard-latest",
                        help="hide older runs of the same approach/task/model/seed/budget/config")
side_runs = right.checkbox("side runs", value=False, key="leaderboard-side",
                           help="runs trained on fewer examples (--data-sizes) or on "
                           "corrupted answers (--label-noise); they record primary_accuracy")
if side_runs and SIDE_METRIC in names and SIDE_METRIC not in shown:
    shown = [*shown, SIDE_METRIC]

long = results.load("metrics", names=sorted({*shown, chosen}), filters=filters,
                    latest_only=latest)
if not side_runs:
    long = main_runs(long)
if long.empty:
    ui.nothing_recorded(", ".join(shown), "Widen the filters or run the suites that record "
                        "them (`pytest suites/ --approach=...`).")
    st.stop()

table = leaderboard(long, shown, chosen)
higher = metric_direction(chosen, higher_is_better(long, chosen))
st.dataframe(
    table, hide_index=True, width="stretch",
    column_config={
        "run_id": st.column_config.NumberColumn("run", format="%d"),
        "tied with best": st.column_config.CheckboxColumn(
            "tied with best", help=f"95% CI overlaps the best candidate's on {chosen}"),
        "tied group": st.column_config.NumberColumn(
            "tied group", help="candidates sharing a number are not shown to differ"),
    },
)
st.caption(
    f"{len(table)} candidates; sorted by {chosen} ({'higher' if higher else 'lower'} is "
    "better). 'tied with best': the 95% interval overlaps the leader's within its "
    "task/model/budget (harness.measure.compare.tied_groups) - not shown to differ, not "
    "shown equal. "
    "Click a column header to sort."
)
rows = long[long["name"] == chosen].copy()
rows["candidate"] = rows["run_id"].map(ui.names_by_run(long))
if 0 < len(rows) <= CHART_LIMIT:
    st.altair_chart(bars_with_ci(rows, chosen), width="stretch")
