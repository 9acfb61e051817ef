"""Latency and memory: p50/p95/p99 per candidate, the per-request distribution, merged vs
unmerged adapters, 4-bit vs dequantized, retrieval vs generation time, and memory."""

from __future__ import annotations

import streamlit as st

from reports import ui
from reports.analysis import metric_matrix
from reports.charts import bars_with_ci, latency_distribution_chart, stacked_phases_chart

QUANTILES = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
VARIANTS = {"merged_": "merged adapter vs unmerged", "dequantized_": "4-bit vs dequantized"}
MEMORY = ["serving_peak_memory_bytes", "peak_memory_bytes"]
HINT = "Measure serving: `pytest suites/test_latency.py --approach=zero-shot,lora`."


def section(title: str, rows, chart) -> None:
    st.subheader(title)
    if rows.empty:
        ui.nothing_recorded(title.lower(), HINT)
    else:
        st.altair_chart(chart(rows), width="stretch")


st.title("Latency and memory")
results = ui.results_or_stop()
filters = ui.scope(results, "latency")
long = results.load("metrics", suites=["latency", "prepare"], filters=filters)
if long.empty:
    ui.nothing_recorded("latency or memory measurements", HINT)
    st.stop()
names = ui.names_by_run(long)
long["candidate"] = long["run_id"].map(names)

section("Latency quantiles", long[long["name"].isin(QUANTILES)],
        lambda rows: bars_with_ci(rows, "ms per request", metric_color=True))

st.subheader("Per-request latency")
measured = [r for r in names if r in set(long.loc[long["name"].isin(QUANTILES), "run_id"])]
chosen = ui.pick_candidates({r: names[r] for r in measured}, "latency-candidates")
samples = results.load("latency_samples", chosen)
if samples.empty:
    ui.nothing_recorded("per-request latencies (examples of suite `latency`)", HINT)
else:
    samples["candidate"] = samples["run_id"].map(names)
    st.altair_chart(latency_distribution_chart(samples), width="stretch")
    st.caption("At most 2,000 requests per candidate are drawn.")

for prefix, title in VARIANTS.items():
    variant = long[long["name"].str.startswith(prefix)]
    runs = set(variant["run_id"])
    base_names = {name.removeprefix(prefix) for name in variant["name"]}
    rows = long[long["run_id"].isin(runs) & (long["name"].isin(base_names)
                                              | long["name"].str.startswith(prefix))]
    rows = rows[rows["name"].str.contains("latency_p50|ttft|decode_ms")]
    section(title, rows, lambda r, t=title: bars_with_ci(r, t, metric_color=True))

phases = long[long["name"].isin(["retrieval_ms", "model_ms"])]
section("Retrieval vs generation", phases, stacked_phases_chart)
section("Memory", long[long["name"].isin(MEMORY)],
        lambda rows: bars_with_ci(rows, "peak bytes", metric_color=True))

st.subheader("All latency and cost measurements")
st.dataframe(metric_matrix(long, sorted(set(long["name"]))), hide_index=True, width="stretch")
