"""Data check: what ``pytest suites/test_data_quality.py --task=PATH`` (and the check at the
start of every session on a data file) found in a task's data, per task and data hash (the
latest session that checked it): each finding's count and rule, and its example rows with
their file:line (``harness.data.quality``).

Findings belong to no run, so this page also shows a results file that holds no runs yet.
Below them, per candidate of the task: the training items whose given answer it finds least
likely (``suspect_labels``, confident learning, ``harness.measure.label_issues``), and, after a
``--label-noise`` run, how well those flags find the corrupted items (precision and recall).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from reports import ui
from reports.analysis import extra_field

COMMAND = "pytest suites/test_data_quality.py --task=PATH"

st.title("Data check")
path = ui.db_path()
version = ui.file_version(path)
if version is None:
    ui.empty_state(path, "No results database yet")
    st.stop()
results = ui.Results(path, version)
findings = results.load("data_findings")


def suspect_labels(task: str) -> None:
    """Per candidate of ``task``: its suspect labels, their rows, and the detector's precision
    and recall against injected noise."""
    flagged = results.load("metrics", names=["suspect_labels"], filters={"task": [task]})
    st.subheader("Suspect labels")
    if flagged.empty:
        ui.nothing_recorded("suspect labels", "Every candidate looks for them when the suite "
                            f"runs: `pytest suites/test_data_quality.py --task={task}`.")
    else:
        st.caption("Training items whose given answer the candidate finds least likely "
                   "(confident learning, Northcutt et al. 2021). A candidate trained on them "
                   "(in-sample) has seen their answers; prompting candidates give the "
                   "out-of-sample view. Against injected noise (--label-noise), the "
                   "precision and recall below say whose flags to trust.")
        names = ui.names_by_run(flagged)
        table = pd.DataFrame({
            "candidate": flagged["run_id"].map(names), "flagged": flagged["value"].astype(int),
            "scored": flagged["extra_json"].map(lambda e: extra_field(e, "scored")),
            "in-sample": flagged["extra_json"].map(lambda e: extra_field(e, "in_sample"))})
        st.dataframe(table, hide_index=True, width="stretch")
        for run_id, name in names.items():
            rows, total = results.load("examples_page", int(run_id),
                                       "data_quality.suspect_labels", limit=50)
            if total:
                with st.expander(f"{name}: {total} least likely answers"):
                    rows["source"] = rows["extra_json"].map(lambda e: extra_field(e, "source"))
                    st.dataframe(rows[["source", "prompt", "reference", "prediction", "score"]]
                                 .rename(columns={"reference": "given", "prediction": "likely",
                                                  "score": "given score"}),
                                 hide_index=True, width="stretch")
    detection = results.load("metrics", like="noise_detection_%", filters={"task": [task]})
    if not detection.empty:
        st.subheader("Do the flags find bad labels? (against --label-noise)")
        names = ui.names_by_run(detection)
        detection["candidate"] = detection["run_id"].map(names)
        detection["measure"] = detection["name"].str.extract(r"noise_detection_(\w+)\[")[0]
        detection["noise"] = detection["extra_json"].map(lambda e: extra_field(e, "label_noise"))
        detection["flagged"] = detection["extra_json"].map(lambda e: extra_field(e, "flagged"))
        st.dataframe(detection[["candidate", "noise", "measure", "value", "ci_low", "ci_high",
                                "n", "flagged"]], hide_index=True, width="stretch")


if findings.empty:
    if results.load("run_count") == 0:
        ui.empty_state(path, "The results database has no runs yet")
        st.stop()
    ui.nothing_recorded("data check", f"Check a task's data before training: `{COMMAND}` "
                        "(a data file is also checked at the start of every session).")
    flagged_tasks = sorted(set(results.load("metrics", names=["suspect_labels"])["task"]))
    if flagged_tasks:  # candidates looked for suspect labels without the data's findings
        suspect_labels(st.selectbox("task", flagged_tasks, key="data-check-task"))
    st.stop()

st.caption("Counts of what to review in the task's data, lower is better; each rule is in "
           "its summary. label_imbalance is a ratio (largest label count / smallest), no "
           "count. A finding fails nothing: judge the rows and fix the data if they matter.")
checked = findings.drop_duplicates(["task", "data_hash"])
labels = {(r.task, r.data_hash): f"{r.task} (data {r.data_hash[:12]}, session {r.session})"
          for r in checked.itertuples()}
key = st.selectbox("task and data", list(labels), format_func=labels.get, key="data-check")
chosen = findings[(findings["task"] == key[0]) & (findings["data_hash"] == key[1])]
to_review = chosen[(chosen["count"] > 0) & chosen["value"].isna()]
st.markdown(f"**{len(to_review)} of {len(chosen)} findings** to review.")
table = chosen[["name", "count", "value", "split", "summary"]].copy()
table["value"] = table["value"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
st.dataframe(table, hide_index=True, width="stretch")
for finding in chosen.itertuples():
    rows = json.loads(finding.rows_json or "[]")
    if not rows:
        continue
    if pd.isna(finding.value):
        shown = f" (first {len(rows)})" if len(rows) < finding.count else ""
        title = f"{finding.name}: {finding.count}{shown}"
    else:
        title = f"{finding.name}: {finding.value:.3g}"
    with st.expander(title):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
suspect_labels(key[0])
