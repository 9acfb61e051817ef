"""Sweeps: a metric against the swept option of each experiment-matrix sweep (``--sweep``),
and two metrics along each sweep (its frontier).

A sweep is the finished runs of one approach/task/model/budget over the same swept fields
(``reports.sweep_data.sweep_runs``); each point is the mean over its seeds, its band and whiskers
the mean of the seeds' 95% CIs. The frontier view follows the reward/KL frontier of Rafailov
et al. (2023, DPO, figure 2): ``judge_reward`` against ``kl_to_base`` by default, the task's
other runs (e.g. the zero-shot base model at KL 0) as labelled single points.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from reports import sweep_data, ui
from reports.analysis import ci_text, higher_is_better, metric_direction
from reports.charts import sweep_chart, sweep_frontier_chart
from reports.data import main_runs

HINT = "pytest suites/ --task=prefs --approach=dpo --sweep dpo.beta=0.05,0.1,0.3"
ALL = "all sweeps of the task"
PREFERRED = ("judge_reward", "accuracy", "gen_accuracy")
FRONTIER = ("kl_to_base", "judge_reward")
POINT_KEYS = ["series", "swept", "swept_text", "rank"]


def decade_or_more(values: pd.Series) -> bool:
    """Whether positive numeric swept values span a factor of 10 or more (log scale helps)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return bool(numbers.notna().all() and (numbers > 0).all()
                and numbers.max() >= 10 * numbers.min())


def table_of(frame: pd.DataFrame, field: str) -> pd.DataFrame:
    """Means with a CI text column, for display, one sweep line after the other."""
    lines = pd.Categorical(frame["series"], categories=list(dict.fromkeys(frame["series"])))
    frame = frame.assign(line=lines).sort_values(["line", "rank"], kind="stable")
    out = frame[["series", "swept_text", "value", "seeds"]].rename(
        columns={"series": "sweep", "swept_text": field, "value": "mean"})
    out.insert(3, "CI (mean of seeds')", ci_text(frame["ci_low"], frame["ci_high"]).to_numpy())
    return out


def frontier_means(points: pd.DataFrame) -> pd.DataFrame:
    """Every sweep's points along its own first swept option (whatever the x axis above
    shows), so a ``dpo.beta`` and an ``rlhf.learning_rate`` sweep share the frontier."""
    parts = []
    for _, one in points.groupby("sweep", sort=False):
        first = one["fields"].iat[0].split(",")[0]
        parts.append(sweep_data.sweep_means(sweep_data.sweep_axis(one, first)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


st.title("Sweeps")
results = ui.results_or_stop()
catalog = results.load("sweep_catalog")
if catalog.empty:
    st.info(
        "**No sweeps recorded in this database yet.** A sweep measures one approach at several "
        "values of its options, one run per value and seed. Run one, e.g.\n\n"
        f"`{HINT} --seeds 0,1`\n\n"
        "then reload this page; each value becomes a point such as `dpo[beta=0.1]`.")
    st.stop()

columns = st.columns(4)
tasks = list(dict.fromkeys(catalog["task"]))
busiest = catalog.groupby("task", sort=False)["runs"].sum().idxmax()
remembered = st.session_state.get(f"{ui.REMEMBER}task")
task = columns[0].selectbox("task", tasks, key="sweeps-task",
                            index=tasks.index(remembered if remembered in tasks else busiest))
in_task = catalog[catalog["task"] == task]
models = list(dict.fromkeys(in_task["model"]))
model = columns[1].selectbox("model", models, key=f"sweeps-model-{task}")
budgets = list(dict.fromkeys(in_task.loc[in_task["model"] == model, "budget"]))
budget = columns[2].selectbox("budget", budgets, key=f"sweeps-budget-{task}-{model}")
scope = {"task": [task], "model": [model], "budget": [budget]}
in_scope = in_task[(in_task["model"] == model) & (in_task["budget"] == budget)]
sweep = columns[3].selectbox("sweep", [ALL, *in_scope["sweep"]],
                             key=f"sweeps-sweep-{task}-{model}-{budget}")

points = results.load("sweep_points", filters=scope)
if sweep != ALL:
    points = points[points["sweep"] == sweep]
fields = list(dict.fromkeys(f for fs in points["fields"].drop_duplicates()
                            for f in fs.split(",")))
names = list(dict.fromkeys(points["name"]))
if points.empty or not names:
    ui.nothing_recorded("metrics of sweep points", f"Measure them: `{HINT}`.")
    st.stop()

st.subheader("Metric by swept value")
left, middle, right = st.columns([2, 2, 1])
default = next((names.index(n) for n in PREFERRED if n in names), 0)
metric = left.selectbox("metric", names, index=default, key=f"sweeps-metric-{task}")
field = middle.selectbox("swept option (x axis)", fields, key=f"sweeps-field-{task}-{sweep}",
                         help="with two swept options, one line per value of the other")
means = sweep_data.sweep_means(sweep_data.sweep_axis(points, field))
log = False
if decade_or_more(means["swept"]):
    log = right.checkbox("log scale", value=True, key=f"sweeps-log-{task}-{field}",
                         help=f"the values of {field} span a decade or more")

shown = means[means["name"] == metric]
if shown.empty:
    ui.nothing_recorded(f"{metric} on the sweeps over {field}",
                        "Pick another metric or swept option.")
else:
    st.altair_chart(sweep_chart(shown, metric, field, log=log), width="stretch")
    higher = metric_direction(metric, higher_is_better(points, metric))
    st.caption(f"{'Higher' if higher else 'Lower'} {metric} is better. Each point is the mean "
               "over its seeds; band and whiskers are the mean of the seeds' 95% CIs. One line "
               "per approach sweep (and per value of a second swept option).")
    st.dataframe(table_of(shown, field), hide_index=True, width="stretch")

st.subheader("Frontier")
if len(names) < 2:
    ui.nothing_recorded("two metrics on the sweep points", f"Run more suites: `{HINT}`.")
    st.stop()
left, right = st.columns(2)
x_default = names.index(FRONTIER[0]) if FRONTIER[0] in names else 0
y_default = names.index(FRONTIER[1]) if FRONTIER[1] in names else 1
if x_default == y_default:
    y_default = 1 if x_default == 0 else 0
x = left.selectbox("x metric", names, index=x_default, key=f"sweeps-x-{task}")
y = right.selectbox("y metric", names, index=y_default, key=f"sweeps-y-{task}")
if x == y:
    st.info("Pick two different metrics.")
    st.stop()
lines = sweep_data.metric_pairs(frontier_means(points), x, y, POINT_KEYS)
others = results.load("metrics", names=sorted({x, y}), filters=scope, swept=False)
others = main_runs(others[others["status"] == "finished"])
singles = sweep_data.metric_pairs(sweep_data.seed_means(others, ["label"]), x, y, ["label"]).rename(
    columns={"label": "candidate"})
if lines.empty:
    ui.nothing_recorded(f"sweep points with both {x} and {y}",
                        "Pick two metrics measured on the same runs.")
    st.stop()
directions = {m: metric_direction(m, higher_is_better(points, m)) for m in (x, y)}
st.altair_chart(sweep_frontier_chart(lines, singles, x, y, x_higher=directions[x],
                                     y_higher=directions[y]), width="stretch")
st.caption("Each line is one sweep, its points joined in the order of its (first) swept "
           "option and labelled with its value (mean over seeds); black diamonds are the "
           "task's runs that are no sweep point (e.g. the base model). Whiskers are 95% CIs "
           "where recorded.")
frontier = pd.concat([lines.rename(columns={"series": "candidate"}).assign(
    value=lines["swept_text"]), singles], ignore_index=True)
st.dataframe(frontier[["candidate", "value", "x", "y"]].rename(
    columns={"value": "swept value", "x": x, "y": y}),
             hide_index=True, width="stretch")
