"""Provenance: each run's config, hashes, versions, device and status; stale runs flagged.

A run is stale when a newer run of the same approach/task/model/seed/budget/config has a
different ``code_version`` or ``data_hash`` (``reports.analysis.stale_runs``): its numbers
were measured with code or data that has since changed.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from reports import ui
from reports.analysis import stale_runs

COLUMNS = ["run_id", "stale", "status", "label", "task", "model", "seed", "budget",
           "config_hash", "data_hash", "model_version", "code_version", "device", "precision",
           "host",
           "session", "started", "error"]

st.title("Provenance")
results = ui.results_or_stop()
runs = results.load("runs")
runs["stale"] = stale_runs(runs)
runs["started"] = pd.to_datetime(runs["started_at"], unit="s", utc=True).dt.strftime(
    "%Y-%m-%d %H:%M:%S UTC")
tasks = sorted(runs["task"].unique())
left, right = st.columns([3, 1])
picked = left.multiselect("task", tasks, default=tasks, key="provenance-task") or tasks
only_flagged = right.checkbox("stale or not finished only", key="provenance-flagged")
shown = runs[runs["task"].isin(picked)]
if only_flagged:
    shown = shown[shown["stale"] | (shown["status"] != "finished")]
stale, unfinished = int(shown["stale"].sum()), int((shown["status"] != "finished").sum())
st.markdown(f"**{len(shown):,} runs**; **{stale} stale** (a newer run of the same candidate "
            f"has another code_version or data_hash); **{unfinished}** not finished.")
st.dataframe(shown[COLUMNS].iloc[::-1], hide_index=True, width="stretch",
             column_config={"stale": st.column_config.CheckboxColumn("stale")})

st.subheader("Run details")
if shown.empty:
    st.stop()
ids = shown["run_id"].tolist()[::-1][:500]
label = dict(zip(shown["run_id"], shown["label"] + " " + shown["task"], strict=True))
run_id = st.selectbox("run", ids, format_func=lambda r: f"#{r} {label[r]}",
                      key="provenance-run")
details = results.load("run_details", int(run_id))
for field in ("config_json", "packages_json", "info_json"):
    st.markdown(f"`{field.removesuffix('_json')}`")
    try:
        st.json(json.loads(details.get(field) or "{}"), expanded=field == "config_json")
    except ValueError:
        st.code(details.get(field) or "", language=None)
if details.get("error"):
    st.error(details["error"])
