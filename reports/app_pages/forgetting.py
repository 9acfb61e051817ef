"""Forgetting: what adapting cost on general probes, with CIs, items fixed and broken, and a
drill-down to the flipped items (``forgetting.general`` examples)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from harness.measure.forgetting import VERDICT_METRICS, read_forgetting
from reports import ui
from reports.analysis import metric_matrix
from reports.charts import bars_with_ci

MAIN = ["forgetting_delta", "nll_per_token_delta", "forgetting_delta_raw",
        "interference_delta", "items_fixed", "items_broken", "mcnemar_p", "probe_accuracy",
        "probe_accuracy_base", "probe_accuracy_raw", "perplexity_delta"]

st.title("Forgetting")
results = ui.results_or_stop()
filters = ui.scope(results, "forgetting")
long = results.load("metrics", suites=["forgetting"], filters=filters)
if long.empty:
    ui.nothing_recorded("forgetting measurements", "Measure an adapted candidate against the "
                        "base model: `pytest suites/test_forgetting.py --approach=lora`.")
    st.stop()
names = ui.names_by_run(long)
long["candidate"] = long["run_id"].map(names)
readings = {
    run_id: read_forgetting({
        r.name: (r.value, None if pd.isna(r.ci_low) else r.ci_low,
                 None if pd.isna(r.ci_high) else r.ci_high)
        for r in group.itertuples() if r.name in VERDICT_METRICS})
    for run_id, group in long.groupby("run_id")}
st.caption("Each measurement read on its own, so a probe gain never hides a perplexity rise: "
           "a loss is a 95% CI wholly on the losing side. Probes through the candidate's own "
           "prompts (few-shot, RAG) measure interference, not forgetting.")
st.dataframe(pd.DataFrame({"candidate": [names[r] for r in readings],
                           "reading": [readings[r].sentence for r in readings]}),
             hide_index=True, width="stretch")
deltas = long[long["name"].isin(["forgetting_delta", "forgetting_delta_raw",
                                 "interference_delta"])]
if not deltas.empty:
    st.altair_chart(bars_with_ci(deltas, "probe accuracy change vs the base model",
                                 metric_color=True), width="stretch")
shown = [n for n in MAIN if n in set(long["name"])]
shown += sorted(n for n in set(long["name"]) if n not in MAIN)
st.dataframe(metric_matrix(long, shown), hide_index=True, width="stretch")
categories = long[long["name"].str.startswith("forgetting_delta[")]
if not categories.empty:
    st.altair_chart(bars_with_ci(categories, "forgetting_delta per category",
                                 metric_color=True), width="stretch")

st.subheader("Flipped items")
left, right = st.columns([2, 1])
run_id = left.selectbox("candidate", list(names), format_func=names.get,
                        key="forgetting-candidate")
flip = right.radio("flip", ["both", "fixed", "broken"], horizontal=True,
                   key="forgetting-flip")
items = results.load("flipped_items", int(run_id), None if flip == "both" else flip)
if items.empty:
    st.info("No flipped items recorded for this candidate (the `forgetting.general` "
            "examples keep the base model's answer beside the candidate's).")
else:
    st.caption("fixed: the base model was wrong and this candidate is right; broken: the "
               "reverse.")
    st.dataframe(items, hide_index=True, width="stretch")
