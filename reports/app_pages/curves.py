"""Curves: training and validation loss per candidate overlaid, and data-efficiency curves
(accuracy against the number of training examples, from ``--data-sizes``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from reports import ui
from reports.analysis import extra_field
from reports.charts import curves_chart, data_efficiency_chart

st.title("Curves")
results = ui.results_or_stop()
filters = ui.scope(results, "curves")
runs = ui.scoped_runs(results, filters, "curve_run_ids")

st.subheader("Training curves")
if runs.empty:
    ui.nothing_recorded("training curves", "Approaches that train record them: "
                        "`pytest suites/ --approach=lora,full-ft`.")
else:
    names = ui.names_by_run(runs)
    chosen = ui.pick_candidates(names, "curves-candidates")
    points = results.load("curves", chosen)
    points["candidate"] = points["run_id"].map(names)
    for name, part in points.groupby("name"):
        st.altair_chart(curves_chart(part, str(name)), width="stretch")

st.subheader("Data efficiency")
points = results.load("metrics", like="data_efficiency[%", filters=filters)
if points.empty:
    ui.nothing_recorded("data-efficiency curves", "Train on several sizes: `pytest suites/ "
                        "--approach=lora --data-sizes 64,256,1024`.")
else:
    sizes = points["extra_json"].map(lambda e: extra_field(e, "train_examples"))
    parsed = points["name"].str.extract(r"\[(\d+)\]")[0]
    points["train_examples"] = pd.to_numeric(sizes.fillna(parsed), errors="coerce")
    points["candidate"] = points["run_id"].map(ui.names_by_run(points))
    st.altair_chart(data_efficiency_chart(points), width="stretch")
    st.dataframe(points[["candidate", "train_examples", "value", "ci_low", "ci_high"]],
                 hide_index=True)
