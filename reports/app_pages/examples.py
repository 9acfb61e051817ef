"""Examples browser: per-item prediction vs reference, a page at a time (SQL ``LIMIT``),
filtered by correctness and text, and two candidates side by side on the same items.

Free replies (generation suites) show the reply, the reference and each per-item metric
(token F1, chrF, ROUGE-L...; ``reports.example_data.item_metrics``). Candidates are compared on any
per-item metric with ``harness.measure.compare``'s paired comparison: the mean difference
B - A with a paired-bootstrap CI, and McNemar's exact test on right/wrong items or a paired
randomisation test on graded scores; the items come largest disagreement first.
"""

from __future__ import annotations

import streamlit as st

from harness.measure.compare import PairedComparison, pair_by_id, paired_comparison
from reports import ui
from reports.analysis import catalogue, fmt

PAGE = 50
PAIRED_LIMIT = 5000
CORRECT = {"all": None, "correct": True, "wrong": False}
ORDERS = {"largest difference first": "difference", "item order": "item"}


@st.cache_data(show_spinner=False, max_entries=64)
def compare(a: dict[str, float], b: dict[str, float]) -> tuple[PairedComparison | None, int]:
    ids, scores_a, scores_b = pair_by_id(a, b)
    ids = ids[:PAIRED_LIMIT]
    if not ids:
        return None, 0
    return paired_comparison(scores_a[:PAIRED_LIMIT], scores_b[:PAIRED_LIMIT]), len(ids)


def page_number(total: int, key: str) -> int:
    pages = max(1, -(-total // PAGE))
    return int(st.number_input(f"page (of {pages})", 1, pages, 1, key=key)) - 1


def default_metric(results: ui.Results, run_id: int, metrics: list[str]) -> int:
    """Index of the run's headline metric (``info_json["headline_metric"]``, the user's
    ``task.metric``) among ``metrics``, else of ``correct``."""
    info = results.load("run_json_field", [run_id], "info").get(run_id, {})
    headline = info.get("headline_metric")
    return metrics.index(headline) if headline in metrics else metrics.index("correct")


def show_comparison(found: PairedComparison, shared: int, metric: str, names: tuple[str, str],
                    lower_is_better: bool) -> None:
    """B - A with its CI, the counts and the paired test's p-value (McNemar's on right/wrong
    items, the paired randomisation test's on graded scores)."""
    delta = fmt(found.delta.value, found.delta.low, found.delta.high)
    on = "" if metric == "correct" else f" in {metric}"
    boxes: list[tuple[str, object, str | None]] = [
        (f"B - A{on} ({shared:,} items)", fmt(found.delta.value),
         f"95% paired-bootstrap CI: {delta}")]
    if found.graded:
        better, worse = ((found.broken, found.fixed) if lower_is_better
                         else (found.fixed, found.broken))
        boxes += [("B better", better, f"items where B's {metric} is better than A's"),
                  ("B worse", worse, f"items where B's {metric} is worse than A's"),
                  ("ties", found.both_right, f"items with the same {metric}"),
                  ("paired randomisation test p", f"{found.p_value:.3g}",
                   "two-sided; random sign flips of the per-item differences")]
    else:
        boxes += [("fixed (A wrong, B right)", found.fixed, None),
                  ("broken (A right, B wrong)", found.broken, None),
                  ("McNemar p", f"{found.p_value:.3g}", None)]
    for column, (label, value, explain) in zip(st.columns(len(boxes)), boxes, strict=True):
        column.metric(label, value, help=explain)
    st.caption(f"Paired comparison (harness.measure.compare): {names[0]} = A, {names[1]} = B; "
               f"difference{on} {delta}; p from {found.test}"
               + (f"; on the first {PAIRED_LIMIT:,} shared items"
                  if shared >= PAIRED_LIMIT else ""))


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
metrics = results.load("item_metrics", int(run_a), suite)
# Keyed by candidate and suite, so each candidate opens on its own headline metric.
metric = right.selectbox("metric", metrics, key=f"examples-metric-{run_a}-{suite}",
                         index=default_metric(results, int(run_a), metrics),
                         help="correct: right/wrong (McNemar); others: graded per-item scores")
lower_is_better = metric != "correct" and catalogue().direction(metric) is False
left, right = st.columns([2, 2])
only = left.radio("items", ["all", "disagree", "fixed", "broken"], horizontal=True,
                  key="examples-only",
                  help="fixed: A wrong, B right; broken: A right, B wrong" if metric == "correct"
                  else f"fixed: B's {metric} better than A's; broken: B's worse")
order = right.radio("order", list(ORDERS), horizontal=True, key="examples-order",
                    help="largest difference B - A first (disagreements first on correct)")
found, shared = compare(results.load("item_scores", int(run_a), suite, metric),
                        results.load("item_scores", int(run_b), suite, metric))
if found is None:
    st.info(f"{names[run_a]} and {others[run_b]} share no items scored on {metric} "
            f"in `{suite}`.")
    st.stop()
show_comparison(found, shared, metric, (names[run_a], others[run_b]), lower_is_better)
side = {"only": only, "search": search, "metric": metric, "order": ORDERS[order]}
pairs_probe = results.load("side_by_side", int(run_a), int(run_b), suite, limit=1, **side)
offset = page_number(pairs_probe[1], "examples-pair-page") * PAGE
pairs, total = results.load("side_by_side", int(run_a), int(run_b), suite, limit=PAGE,
                            offset=offset, **side)
st.caption(f"{total:,} shared items match")
st.dataframe(pairs, hide_index=True, width="stretch")
