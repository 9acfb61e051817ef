"""Decision report: prompting vs RAG vs fine-tuning on one task, with the rule that picks.

Rows practitioners argue about (cost, production latency, updatable knowledge, format
consistency, terminology, data needed, maintenance) filled with measured numbers, and the
recommendation of ``reports.decision.recommend`` with the rule and numbers it applied.
"""

from __future__ import annotations

import streamlit as st

from reports import ui
from reports.charts import bars_with_ci
from reports.decision import report

st.title("Decision report")
results = ui.results_or_stop()
filters = ui.scope(results, "decision")
long = results.load("metrics", filters=filters)
long = long[long["train_examples"].isna()]
if long.empty:
    ui.nothing_recorded("metrics", f"Measure this task: `pytest suites/ --approach=all "
                        f"--task={filters['task'][0]}`.")
    st.stop()
configs = results.load("run_configs", long["run_id"].drop_duplicates().astype(int).tolist())
table, found, metric = report(long, configs)
if found is None:
    ui.nothing_recorded(
        "accuracy or gen_accuracy", "The recommendation compares the task's headline metric: "
        "`pytest suites/test_accuracy.py --approach=zero-shot,few-shot,rag,lora`.")
else:
    st.success(f"**Recommendation:** {found.sentence}")
    st.caption(f"Rule applied: {found.rule}. Good enough (tied with the best): "
               f"{', '.join(c.name for c in found.good_enough)}.")
st.dataframe(table, hide_index=True, width="stretch")
if metric:
    rows = long[long["name"] == metric].copy()
    names = ui.names_by_run(long)
    rows["candidate"] = rows["run_id"].map(names)
    st.altair_chart(bars_with_ci(rows, metric), width="stretch")
