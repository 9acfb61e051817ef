"""Pareto view of any two metrics, the non-dominated candidates highlighted.

After PEFT's ``method_comparison`` app (pick two metrics, see the frontier); here each
metric is read in its recorded direction (``higher_is_better``), which the user can flip.
"""

from __future__ import annotations

import streamlit as st

from reports import ui
from reports.analysis import metric_direction, pareto_table
from reports.charts import pareto_chart

st.title("Pareto view")
results = ui.results_or_stop()
filters = ui.scope(results, "pareto")
catalog = results.load("metric_catalog")
directions = dict(zip(catalog["name"], catalog["higher_is_better"], strict=True))
names = list(dict.fromkeys(catalog["name"]))
if len(names) < 2:
    ui.nothing_recorded("two metrics", "Run more suites: `pytest suites/ --approach=...`.")
    st.stop()


def pick(column, label: str, preferred: tuple[str, ...], fallback: int) -> tuple[str, bool]:
    default = next((names.index(n) for n in preferred if n in names), fallback)
    name = column.selectbox(label, names, index=default, key=f"pareto-{label}")
    recorded = directions.get(name)
    known = None if recorded is None or recorded != recorded else bool(recorded)
    higher = column.checkbox(f"higher {name} is better", value=metric_direction(name, known),
                             key=f"pareto-{label}-{name}")
    return name, higher


left, right = st.columns(2)
x, x_higher = pick(left, "x metric", ("latency_p50_ms", "train_seconds", "trainable_params"),
                   0)
headlines = tuple(results.load("run_headlines", filters=filters))  # the task's, first
y, y_higher = pick(right, "y metric", (*headlines, "accuracy", "gen_accuracy"), 1)
long = results.load("metrics", names=sorted({x, y}), filters=filters)
table = pareto_table(long, x, y, x_higher, y_higher) if x != y else long.iloc[0:0]
if table.empty:
    ui.nothing_recorded(f"candidates with both {x} and {y}",
                        "Pick two metrics measured on the same runs.")
    st.stop()
st.altair_chart(pareto_chart(table, x, y, x_higher, y_higher), width="stretch")
front = table[table["frontier"]]["candidate"].tolist()
st.markdown(f"**Pareto frontier** ({len(front)} of {len(table)}): {', '.join(front)}")
st.caption("A candidate is on the frontier when no other is at least as good on both metrics "
           "and better on one. Whiskers are 95% CIs where recorded.")
renamed = {"x": x, "x_low": f"{x} low", "x_high": f"{x} high", "y": y, "y_low": f"{y} low",
           "y_high": f"{y} high"}
st.dataframe(table.drop(columns=["label"]).rename(columns=renamed), hide_index=True,
             width="stretch")
