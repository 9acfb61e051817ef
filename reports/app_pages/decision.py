"""Decision report: prompting vs RAG vs fine-tuning on one task, with the rule that picks.

Inputs: the rule's margin and alpha, and the requirements that exclude candidates first
(empty = no requirement), the same as ``python -m reports.export``'s flags. Shown: the
recommendation of ``reports.decision.recommend`` with the rule and numbers it applied, the
exclusions, each candidate's paired difference from the best (CI, McNemar p), and the rows
practitioners argue about (cost, production latency, updatable knowledge, format
consistency, terminology, data needed, maintenance) filled with measured numbers.
"""

from __future__ import annotations

import streamlit as st

from reports import ui
from reports.charts import bars_with_ci
from reports.data import main_runs
from reports.decision import DEFAULT_ALPHA, DEFAULT_MARGIN, Requirements, report, verdict_table


def settings() -> tuple[float, float, Requirements]:
    """The margin, alpha and requirements widgets (keys ``decision-...``)."""
    with st.expander("Rule settings and requirements", expanded=True):
        left, right = st.columns(2)
        margin = left.number_input(
            "margin: accuracy a cheaper candidate may lose (absolute; the CI's lower "
            "bound must stay above -margin)", min_value=0.0,
            max_value=0.5, value=DEFAULT_MARGIN, step=0.005, format="%.3f",
            key="decision-margin")
        alpha = right.number_input(
            "alpha: level of the paired p-value (evidence only)", min_value=0.001,
            max_value=0.5,
            value=DEFAULT_ALPHA, step=0.01, format="%.3f", key="decision-alpha")
        st.caption("Requirements exclude candidates before the rule; leave empty for none. "
                   "A candidate lacking the metric a requirement reads is excluded as "
                   "not measured.")
        cols = st.columns(4)
        p95 = cols[0].number_input("max latency_p95_ms", min_value=0.0, value=None,
                                   placeholder="no requirement", key="decision-max-p95-ms")
        serving = cols[1].number_input("max cost_per_1k_requests", min_value=0.0, value=None,
                                       format="%.4f", placeholder="no requirement",
                                       key="decision-max-cost-per-1k")
        training = cols[2].number_input("max train_cost", min_value=0.0, value=None,
                                        format="%.4f", placeholder="no requirement",
                                        key="decision-max-train-cost")
        forgetting = cols[3].number_input("min forgetting_delta", min_value=-1.0,
                                          max_value=1.0, value=None, step=0.01,
                                          placeholder="no requirement",
                                          key="decision-min-forgetting")
        updatable = st.checkbox("knowledge must be updatable without retraining "
                                "(knowledge-update suite)", key="decision-updatable")
    return margin, alpha, Requirements(p95, serving, training, updatable, forgetting)


st.title("Decision report")
results = ui.results_or_stop()
filters = ui.scope(results, "decision")
long = results.load("metrics", filters=filters)
long = main_runs(long)
if long.empty:
    ui.nothing_recorded("metrics", f"Measure this task: `pytest suites/ --approach=all "
                        f"--task={filters['task'][0]}`.")
    st.stop()
margin, alpha, requirements = settings()
configs = results.load("run_configs", long["run_id"].drop_duplicates().astype(int).tolist())
table, found, metric = report(
    long, configs, requirements=requirements, margin=margin, alpha=alpha,
    items=lambda suite, ids, value: results.load("item_scores_by_run", tuple(ids), suite,
                                                 value))
if found is None:
    ui.nothing_recorded(
        "the task's headline metric", "The recommendation compares the task's headline metric "
        "(accuracy, or f1 / your --set task.metric=NAME for free text): "
        "`pytest suites/test_accuracy.py --approach=zero-shot,few-shot,rag,lora`.")
else:
    if found.choice is None:
        st.warning(f"**No recommendation.** {found.sentence}")
    else:
        st.success(f"**Recommendation:** {found.sentence}")
    wanted = requirements.describe()
    st.markdown("**Requirements:** " + ("; ".join(wanted) if wanted else "none set")
                + "".join(f"\n- {exclusion}" for exclusion in found.excluded))
    st.caption(f"Rule applied: {found.rule}. Good enough: "
               f"{', '.join(c.name for c in found.good_enough) or 'none'}.")
    st.subheader(f"Each candidate against the best on {metric}")
    st.dataframe(verdict_table(found), hide_index=True, width="stretch")
st.subheader("What was measured, per aspect")
st.dataframe(table, hide_index=True, width="stretch")
if metric:
    rows = long[long["name"] == metric].copy()
    names = ui.names_by_run(long)
    rows["candidate"] = rows["run_id"].map(names)
    st.altair_chart(bars_with_ci(rows, metric), width="stretch")
