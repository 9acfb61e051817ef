"""Curves: training and validation loss per candidate overlaid, data-efficiency curves
(accuracy against the number of training examples, from ``--data-sizes``) and label-noise
curves (accuracy against the share of corrupted training answers, from ``--label-noise``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from reports import ui
from reports.analysis import extra_field
from reports.charts import curves_chart, data_efficiency_chart, noise_robustness_chart

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


def curve_points(metric: str, x: str) -> pd.DataFrame:
    """The ``metric[...]`` rows of the scope with their x value: the ``x`` field of each
    metric's extra, else the number in its name's brackets; and each run's candidate name."""
    points = results.load("metrics", like=f"{metric}[%", filters=filters)
    if not points.empty:
        given = points["extra_json"].map(lambda e: extra_field(e, x))
        parsed = points["name"].str.extract(r"\[([0-9.]+)\]")[0]
        points[x] = pd.to_numeric(given.fillna(parsed), errors="coerce")
        points["candidate"] = points["run_id"].map(ui.names_by_run(points))
    return points


st.subheader("Data efficiency")
points = curve_points("data_efficiency", "train_examples")
if points.empty:
    ui.nothing_recorded("data-efficiency curves", "Train on several sizes: `pytest suites/ "
                        "--approach=lora --data-sizes 64,256,1024`.")
else:
    st.altair_chart(data_efficiency_chart(points), width="stretch")
    st.dataframe(points[["candidate", "train_examples", "value", "ci_low", "ci_high"]],
                 hide_index=True)

st.subheader("Label noise")
points = curve_points("noise_robustness", "label_noise")
if points.empty:
    ui.nothing_recorded("label-noise curves", "Corrupt a share of the training answers: "
                        "`pytest suites/ --approach=lora,few-shot --label-noise 0.1,0.2,0.4`.")
else:
    points["corrupted"] = points["extra_json"].map(lambda e: extra_field(e, "corrupted"))
    st.altair_chart(noise_robustness_chart(points), width="stretch")
    st.dataframe(points.sort_values(["candidate", "label_noise"])[
        ["candidate", "label_noise", "corrupted", "value", "ci_low", "ci_high"]],
        hide_index=True)
