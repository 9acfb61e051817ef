"""Examples browser: per-item prediction vs reference, a page at a time (SQL ``LIMIT``),
filtered by correctness and text, and two candidates side by side on the same items with
the paired comparison of ``harness.measure.compare`` (bootstrap CI of the difference, McNemar)."""

from __future__ import annotations

import streamlit as st

from harness.measure.compare import pair_by_id, paired_comparison
from reports import ui
from reports.analysis import fmt

PAGE = 50
PAIRED_LIMIT = 5000
CORRECT = {"all": None, "correct": True, "wrong": False}


@st.cache_data(show_spinner=False, max_entries=64)
def compare(a: dict[str, bool], b: dict[str, bool]):
    ids, hits_a, hits_b = pair_by_id(a, b)
    ids = ids[:PAIRED_LIMIT]
    if not ids:
        return None, 0
    return paired_comparison(hits_a[:PAIRED_LIMIT], hits_b[:PAIRED_LIMIT]), len(ids)


def page_number(total: int, key: str) -> int:
    pages = max(1, -(-total // PAGE))
    return int(st.number_input(f"page (of {pages})", 1, pages, 1, key=key)) - 1


st.title("Examples")
results = ui.results_or_stop()
filters = ui.scope(results, "examples")
runs = ui.scoped_runs(results, filters, "example_run_ids")
if runs.empty:
    ui.nothing_recorded("per-item examples", "Suites store them: "
                        "`pytest suites/test_accuracy.py --approach=zero-shot,few-shot`.")
    st.stop()
names = ui.names_by_run(runs)
left, middle = st.columns(2)
run_a = left.selectbox("candidate", list(names), format_func=names.get, key="examples-a",
                       index=len(names) - 1)
suites = results.load("example_suites", int(run_a))
if not suites:
    ui.nothing_recorded(f"examples for {names[run_a]}",
                        "Suites store per-item rows: `pytest suites/test_accuracy.py`.")
    st.stop()
suite = middle.selectbox("examples of suite", suites, key="examples-suite")
left, right = st.columns([1, 2])
which = left.radio("show", list(CORRECT), horizontal=True, key="examples-correct")
search = right.text_input("search prompt, prediction or reference", key="examples-search")
probe = results.load("examples_page", int(run_a), suite, correct=CORRECT[which],
                     search=search, limit=1)
offset = page_number(probe[1], "examples-page") * PAGE
rows, total = results.load("examples_page", int(run_a), suite, correct=CORRECT[which],
                           search=search, limit=PAGE, offset=offset)
st.caption(f"{total:,} matching items; showing {offset + 1 if total else 0}-"
           f"{offset + len(rows)}")
st.dataframe(rows, hide_index=True, width="stretch")

st.subheader("Side by side")
others = {r: n for r, n in names.items() if r != run_a}
if not others:
    st.info("Only one candidate in this selection: nothing to compare with.")
    st.stop()
left, right = st.columns([2, 2])
run_b = left.selectbox("compared with (B)", list(others), format_func=others.get,
                       key="examples-b")
only = right.radio("items", ["all", "disagree", "fixed", "broken"], horizontal=True,
                   key="examples-only", help="fixed: A wrong, B right; broken: A right, B wrong")
found, shared = compare(results.load("correctness", int(run_a), suite),
                        results.load("correctness", int(run_b), suite))
if found is None:
    st.info(f"{names[run_a]} and {others[run_b]} share no scored items in `{suite}`.")
    st.stop()
delta = fmt(found.delta.value, found.delta.low, found.delta.high)
cols = st.columns(4)
cols[0].metric(f"B - A ({shared:,} items)", fmt(found.delta.value),
               help=f"95% paired-bootstrap CI: {delta}")
cols[1].metric("fixed (A wrong, B right)", found.fixed)
cols[2].metric("broken (A right, B wrong)", found.broken)
cols[3].metric("McNemar p", f"{found.p_value:.3g}")
st.caption(f"Paired comparison (harness.measure.compare): {names[run_a]} = A, {others[run_b]} = B; "
           f"difference {delta}"
           + (f"; on the first {PAIRED_LIMIT:,} shared items" if shared >= PAIRED_LIMIT else ""))
pairs_probe = results.load("side_by_side", int(run_a), int(run_b), suite, only=only,
                           search=search, limit=1)
offset = page_number(pairs_probe[1], "examples-pair-page") * PAGE
pairs, total = results.load("side_by_side", int(run_a), int(run_b), suite, only=only,
                            search=search, limit=PAGE, offset=offset)
st.caption(f"{total:,} shared items match")
st.dataframe(pairs, hide_index=True, width="stretch")
