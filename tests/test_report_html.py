"""The one-file HTML report (``python -m reports.export --out report.html``): the dashboard's
charts inlined as SVG per task, a note where a chart has no data, escaped stored strings, and
no script or external resource; on a database written through ``harness.runner.store.Store``
with long composition names and a task that measured no forgetting."""

from __future__ import annotations

import re
from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from harness.runner.matrix import point_label
from harness.runner.store import RunRecord, Store
from reports import data, export
from reports.report_charts import to_svg

COMPOSITION = point_label("lora+rag+distill", {"lora.lr": 0.0001})
ODD = "<script>alert(1)</script>&co"
CANDIDATES = ("zero-shot", COMPOSITION, ODD)


def _record(approach: str, task: str, sweep: dict | None = None) -> RunRecord:
    return RunRecord(session="s", approach=approach, task=task, model="org/some-model-135m",
                     seed=0, budget="smoke", config={}, config_hash=f"h-{approach}",
                     data_hash="d", model_version="m1", code_version="c", packages={},
                     device="cpu", sweep=sweep or {})


def write_results(path: Path) -> Path:
    """Task ``wide``: three candidates (a composition sweep point with a long name and one
    whose name is markup) with accuracy, latency, training cost, forgetting, a training
    curve and per-request latencies; task ``plain``: two candidates with accuracy only."""
    store = Store(path)
    for k, approach in enumerate(("zero-shot", "lora+rag+distill", ODD)):
        sweep = {"lora.lr": 0.0001} if approach == "lora+rag+distill" else None
        run = store.start_run(_record(approach, "wide", sweep))
        accuracy = 0.55 + 0.1 * k
        for name, value in (("accuracy", accuracy), ("macro_f1", accuracy - 0.05),
                            ("gen_accuracy", accuracy - 0.1)):
            store.add_metric(run, "accuracy", name, value, low=value - 0.08, high=value + 0.08,
                             n=40, higher_is_better=True)
        for name, ms in (("latency_p50_ms", 90), ("latency_p95_ms", 140),
                         ("latency_p99_ms", 180)):
            store.add_metric(run, "latency", name, ms + 20 * k, low=ms + 20 * k - 5,
                             high=ms + 20 * k + 5, higher_is_better=False)
        store.add_metric(run, "latency", "train_cost", 0.5 * k, higher_is_better=False)
        store.add_metric(run, "forgetting", "forgetting_delta", -0.02 * k, low=-0.02 * k - 0.03,
                         high=-0.02 * k + 0.03, higher_is_better=True)
        store.add_examples(run, "latency", [{"item_id": f"r{i}", "prompt": "p",
                                             "latency_ms": 80.0 + 10 * k + i} for i in range(8)])
        if k:
            store.add_curve_points(run, [(step, split, "loss", 2.0 - 0.2 * step + 0.1 * s)
                                         for step in range(1, 5)
                                         for s, split in enumerate(("train", "validation"))])
        store.finish_run(run, "finished")
    for approach, value in (("zero-shot", 0.5), ("few-shot", 0.7)):
        run = store.start_run(_record(approach, "plain"))
        store.add_metric(run, "accuracy", "accuracy", value, low=value - 0.1, high=value + 0.1,
                         n=40, higher_is_better=True)
        store.finish_run(run, "finished")
    store.close()
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("report")
    db = write_results(folder / "r.db")
    assert export.main(["--db", str(db), "--out", str(folder / "report.html")]) == 0
    return (folder / "report.html").read_text(encoding="utf-8")


def task_part(page: str, task: str) -> str:
    """The HTML of one task's section (from its heading to the next task's)."""
    start = page.index(f"<h2>Task {task}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start:end if end > 0 else len(page)]


def figure_titles(part: str) -> list[str]:
    return re.findall(r'<figure role="img" aria-label="([^"]*)"><svg', part)


def svg_texts(part: str, title: str) -> list[str]:
    """The ``<text>`` contents of the figure titled ``title`` (still escaped)."""
    start = part.index(f'<figure role="img" aria-label="{title}">')
    svg = part[start:part.index("</figure>", start)]
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_each_task_gets_the_dashboards_charts_as_inline_svg(page):
    wide = figure_titles(task_part(page, "wide"))
    assert wide == ["Leaderboard: accuracy", "Pareto view: accuracy vs latency_p50_ms",
                    "Pareto view: accuracy vs train_cost",
                    "Forgetting: probe accuracy change vs the base model",
                    "Latency: p50, p95 and p99 per request", "Latency: per-request distribution",
                    "Training curve: loss"]
    names = {COMPOSITION, "zero-shot", "&lt;script&gt;alert(1)&lt;/script&gt;&amp;co"}
    for title in ("Leaderboard: accuracy", "Pareto view: accuracy vs latency_p50_ms"):
        assert names <= set(svg_texts(task_part(page, "wide"), title))  # a mark per candidate
    plain = task_part(page, "plain")
    assert figure_titles(plain) == ["Leaderboard: accuracy"]
    assert {"zero-shot", "few-shot"} <= set(svg_texts(plain, "Leaderboard: accuracy"))


def test_a_chart_without_data_is_a_one_line_note(page):
    plain = task_part(page, "plain")
    assert ('<p class="note"><b>Forgetting: probe accuracy change vs the base model.</b> '
            "No chart: no forgetting measured") in plain
    assert "No chart: no latency measured" in plain
    assert "No chart: no candidate in this scope recorded a training curve" in plain
    assert "No chart: no candidate recorded both latency_p50_ms and accuracy" in plain
    assert "No chart" not in task_part(page, "wide")


def test_stored_strings_are_escaped_and_the_page_is_self_contained(page):
    assert "<script" not in page and "alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;&amp;co") >= 4  # tables and charts
    assert not re.search(r"\b(src|href)\s*=", page)  # nothing to fetch, not even a link
    assert "http" not in page and "xmlns" not in page
    ids = re.findall(r'\sid="([^"]*)"', page)
    assert len(ids) == len(set(ids))  # ids of several inline charts never collide


def test_cells_wrap_and_keep_a_ci_on_one_line(page):
    assert ('<td>lora+<wbr>rag+<wbr>distill<span class="nb">[lora.lr=0.0001]</span></td>'
            in page)
    assert '<td>0.750 <span class="nb">[0.670, 0.830]</span></td>' in page
    assert "white-space:nowrap}" in page and ".wrap{overflow-x:auto" in page


def test_markdown_stays_one_file_without_charts(tmp_path):
    db = write_results(tmp_path / "r.db")
    out = tmp_path / "out"
    out.mkdir()
    assert export.main(["--db", str(db), "--out", str(out / "r.md")]) == 0
    markdown = (out / "r.md").read_text(encoding="utf-8")
    assert "## Task wide" in markdown and "<svg" not in markdown
    assert [p.name for p in out.iterdir()] == ["r.md"]  # no image files beside it
    connection = data.connect(db)
    try:  # and Markdown's sections draw no chart at all (the HTML's take about 1.5 s)
        parts = export.sections(connection, charts=False)
        assert parts and all(p.leaderboard_chart is None and not p.charts for p in parts)
        assert any(p.charts for p in export.sections(connection))
    finally:
        connection.close()


def test_clip_path_ids_of_inline_charts_never_collide():
    label = 'a id="clip1" url(#clip1)'  # text that looks like an id stays as it was
    points = pd.DataFrame({"x": [1, 5], "y": [2, 3], "candidate": [label, "b"]})
    clipped = alt.Chart(points).mark_line(clip=True).encode(
        x=alt.X("x:Q", scale=alt.Scale(domain=[0, 3])), y="y:Q")
    chart = clipped + alt.Chart(points).mark_text().encode(x="x:Q", y="y:Q", text="candidate:N")
    svgs = {prefix: to_svg(chart, prefix) for prefix in ("one", "two")}
    for prefix, svg in svgs.items():
        declared = re.findall(r'<clipPath id="([^"]+)"', svg)
        assert declared and all(name.startswith(f"{prefix}-") for name in declared)
        assert set(re.findall(r'clip-path="url\(#([^)]+)\)"', svg)) == set(declared)
        assert f">{label}</text>" in svg
    ids = [set(re.findall(r'<clipPath id="([^"]+)"', svg)) for svg in svgs.values()]
    assert not ids[0] & ids[1]
