"""Plain-text tables of stored results (the session summary printed after a pytest run).

With several seeds (``--seeds``) a second table gives each approach's mean, spread and
interval over seeds, and which approaches are statistically tied (``harness.measure.compare``).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from harness.measure.catalogue import Catalogue
from harness.measure.compare import SeedSummary, seed_summary, tied_groups
from harness.measure.forgetting import VERDICT_METRICS, read_forgetting
from harness.measure.metrics import clustered_mean
from harness.runner.matrix import point_label
from harness.runner.store import Store

SIDE_RUN_FIELDS = frozenset({"train_examples", "label_noise"})
"""Config fields that mark a side run: a cell's approach prepared again on other training data
for a curve of the cell's run (``--data-sizes``, ``--label-noise``); tables of candidates
leave such runs out."""

SUMMARY_METRICS_LIMIT = 6
"""Quality metrics shown (headline ranks of the metric catalogue first); the cost columns
are the catalogue's ranked cost metrics. Everything is in the database."""


def _cell(value: float, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    table = [header, *rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table]


def _label(run, several_seeds: bool) -> str:
    label = point_label(run["approach"], json.loads(run["sweep_json"] or "{}"))
    config = json.loads(run["config_json"])
    if config.get("train_examples") is not None:
        label += f" (n={config['train_examples']})"
    if config.get("label_noise") is not None:
        label += f" (noise={config['label_noise']:g})"
    return f"{label} seed={run['seed']}" if several_seeds else label


def _matrix_order(runs) -> list:
    """Runs grouped by approach (in first-run order), then sweep point, then seed: the points
    of one sweep sit together whatever order an executor finished them in."""
    first = {}
    for run in runs:
        first.setdefault(run["approach"], len(first))

    def key(run):
        sweep = json.loads(run["sweep_json"] or "{}")
        point = [(k, str(type(v)), v if isinstance(v, (int, float)) else str(v))
                 for k, v in sweep.items()]
        return first[run["approach"]], point, run["seed"], run["id"]

    return sorted(runs, key=key)


def session_table(store: Store, session: str, path: Path, catalogue: Catalogue,
                  reused: dict[str, int] | None = None) -> str:
    """Approach x metric table (with 95% CIs) for the runs of ``session`` and the earlier
    runs it reused (``--resume``: cell id -> run id).

    Per-class metrics (names with ``[``) are left to the dashboard to keep the table narrow.
    """
    reused = reused or {}
    old = sorted(set(reused.values()))
    chosen = f"(r.session = ? OR r.id IN ({','.join('?' * len(old))}))"
    runs = _matrix_order(store.query(
        "SELECT id, approach, task, model, budget, seed, status, config_json, device, "
        f"precision, sweep_json, info_json FROM runs r WHERE {chosen} ORDER BY id",
        (session, *old),
    ))
    if not runs:
        return f"no runs recorded; results database: {path.resolve()}"
    metrics = store.query(
        "SELECT m.run_id, m.name, m.value, m.ci_low, m.ci_high, m.higher_is_better, "
        "m.extra_json FROM metrics m JOIN runs r ON r.id = m.run_id "
        f"WHERE {chosen} AND instr(m.name, '[') = 0 ORDER BY m.id", (session, *old),
    )
    recorded = list(dict.fromkeys(row["name"] for row in metrics))
    costs = {m.name for m in catalogue.costs()}
    headlines = {json.loads(run["info_json"] or "{}").get("headline_metric") for run in runs}
    quality = sorted((n for n in recorded if n not in costs),
                     key=lambda n: (n not in headlines, catalogue.rank(n)))
    quality = quality[:SUMMARY_METRICS_LIMIT]
    names = quality + [n for n in catalogue.headline() if n in costs and n in recorded]
    cells = {}
    extras = [json.loads(row["extra_json"]) for row in metrics]
    for row, extra in zip(metrics, extras, strict=True):
        cells[(row["run_id"], row["name"])] = extra.get("verdict") or _cell(
            row["value"], row["ci_low"], row["ci_high"]) + _scored(extra)
    several_seeds = len({run["seed"] for run in runs}) > 1
    status = {run_id: f"reused (run {run_id})" for run_id in old}
    lines = _table(["approach", "status", *names], [
        [_label(run, several_seeds), status.get(run["id"], run["status"]),
         *(cells.get((run["id"], n), "-") for n in names)]
        for run in runs
    ])
    first = runs[0]
    seeds = "seeds=" + ",".join(sorted({str(r["seed"]) for r in runs})) if several_seeds else (
        f"seed={first['seed']}")
    context = (f"task={first['task']} model={first['model']} budget={first['budget']} "
               f"{seeds} device={first['device']} precision={first['precision']} "
               "(95% bootstrap CIs in brackets)")
    out = [context, *scoring_lines(runs), *lines,
           *adaptive_lines(runs, metrics, extras, several_seeds),
           *forgetting_lines(store, runs, several_seeds)]
    if reused:
        out.append(f"reused {len(reused)} finished cell(s) from earlier runs (--resume), "
                   "not run again: " + ", ".join(f"{cell} (run {run_id})"
                                                  for cell, run_id in reused.items()))
    if several_seeds:
        out += ["", *seed_table(runs, metrics, quality, item_rows(store, runs, quality[:1]))]
    return "\n".join([*out, f"results database: {path.resolve()} (session {session})"])


def _scored(extra: dict) -> str:
    """`` n=120/500`` for a metric an adaptive evaluation stopped before the last item."""
    scored, available = extra.get("n_scored"), extra.get("n_available")
    return f" n={scored}/{available}" if extra.get("adaptive") and scored != available else ""


def adaptive_lines(runs, metrics, extras: list[dict], several_seeds: bool) -> list[str]:
    """One line per metric of ``--adaptive on`` (``extras``: each metric row's parsed
    ``extra_json``): how many items it took and why it stopped (``harness.measure.adaptive``)."""
    labels = {run["id"]: _label(run, several_seeds) for run in runs}
    out = []
    for row, extra in zip(metrics, extras, strict=True):
        if extra.get("adaptive") and "stop_reason" in extra:
            out.append(f"adaptive {row['name']} of {labels.get(row['run_id'], '?')}: "
                       f"{extra['n_scored']} of {extra['n_available']} items, "
                       f"{extra['stop_reason']}"
                       + (" (a bootstrap CI)" if extra.get("interval") == "bootstrap" else ""))
    if out:
        out.append("(--adaptive on: intervals of these metrics are anytime-valid confidence "
                   "sequences unless marked, "
                   "valid although each candidate stopped when its question was "
                   "settled; wider than a bootstrap CI on as many items)")
    return out


def scoring_lines(runs) -> list[str]:
    """One line per data-file task: how it was scored and why (``TaskData.scoring``); and one
    per task whose headline metric is a graded score of free replies (the first column)."""
    infos = [(run["task"], json.loads(run["info_json"] or "{}")) for run in runs]
    notes = dict.fromkeys((task, info.get("task_scoring")) for task, info in infos)
    headlines = dict.fromkeys((task, info.get("headline_metric")) for task, info in infos)
    return [f"task {task}: {note}" for task, note in notes if note] + [
        f"task {task}: candidates are compared on {metric} (the first column; choose another "
        "with --set task.metric=NAME)" for task, metric in headlines
        if metric not in (None, "accuracy", "gen_accuracy")]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def interrupted_line(store: Store, session: str, path: Path) -> str:
    """What an interrupted session (Ctrl-C) kept in the database: its finished runs, and the
    metrics and per-item rows the runs it cut short had recorded (each run marked
    ``interrupted``, never half-written: every stored row is a whole committed write)."""
    runs = store.query(
        "SELECT r.id, r.approach, r.status, "
        "(SELECT count(*) FROM metrics m WHERE m.run_id = r.id) AS metrics, "
        "(SELECT count(*) FROM examples e WHERE e.run_id = r.id) AS examples "
        "FROM runs r WHERE r.session = ? ORDER BY r.id", (session,))
    finished = [r for r in runs if r["status"] == "finished"]
    failed = [r for r in runs if r["status"] == "failed"]
    cut = [r for r in runs if r["status"] not in ("finished", "failed")]
    kept = f"interrupted: kept {_count(len(finished), 'finished run')}"
    if failed:
        kept += f", {_count(len(failed), 'failed run')}"
    if cut:
        names = ", ".join(dict.fromkeys(r["approach"] for r in cut))
        which = "the interrupted run" if len(cut) == 1 else f"the {len(cut)} interrupted runs"
        kept += (f" and {_count(sum(r['metrics'] for r in cut), 'metric')}, "
                 f"{_count(sum(r['examples'] for r in cut), 'per-item row')} of {which} "
                 f"({names}, marked 'interrupted')")
    return (f"{kept} in {path}; nothing recorded was lost. Rerun with --resume to run only "
            "what did not finish.")


def forgetting_lines(store: Store, runs, several_seeds: bool) -> list[str]:
    """One line per run with forgetting measurements, reading them together
    (:func:`harness.measure.forgetting.read_forgetting`): a perplexity rise is never hidden
    behind a probe gain."""
    ids = [run["id"] for run in runs]
    rows = store.query(
        f"SELECT run_id, name, value, ci_low, ci_high FROM metrics WHERE run_id IN "
        f"({','.join('?' * len(ids))}) AND name IN ({','.join('?' * len(VERDICT_METRICS))})",
        (*ids, *VERDICT_METRICS))
    cells: dict[int, dict[str, tuple]] = defaultdict(dict)
    for row in rows:
        cells[row["run_id"]][row["name"]] = (row["value"], row["ci_low"], row["ci_high"])
    lines = [f"  {_label(run, several_seeds)}: {read_forgetting(cells[run['id']]).sentence}"
             for run in runs if cells.get(run["id"])]
    return ["forgetting (95% CIs; a loss is a CI wholly on the losing side):", *lines] \
        if lines else []


ITEM_SUITES = {"accuracy": "accuracy.choice", "gen_accuracy": "accuracy.generation"}
"""Where the per-item rows of a right/wrong headline are (suites/test_accuracy.py)."""


def item_rows(store: Store, runs, names: list[str]) -> dict[int, list[tuple[float, object]]]:
    """``run_id -> [(correct, draw)]`` of the first of ``names`` when it is a right/wrong
    headline with per-item rows (draw ``None`` for a candidate with one draw)."""
    suite = ITEM_SUITES.get(names[0]) if names else None
    if suite is None or not runs:
        return {}
    ids = [run["id"] for run in runs]
    out: dict[int, list[tuple[float, object]]] = defaultdict(list)
    for row in store.query(
            f"SELECT run_id, correct, extra_json FROM examples WHERE run_id IN "
            f"({','.join('?' * len(ids))}) AND suite = ? AND correct IS NOT NULL ORDER BY id",
            (*ids, suite)):
        out[row["run_id"]].append((float(row["correct"]),
                                   json.loads(row["extra_json"] or "{}").get("draw")))
    return dict(out)


def over_seeds(rows_by_run: list[list[tuple[float, object]]], per_seed: list[float],
               seed: int = 0) -> SeedSummary:
    """A headline over seeds from every seed's items: the mean over all items, and the
    two-stage bootstrap's interval (seeds, and each seed's draws, resampled, then items:
    :func:`harness.measure.metrics.clustered_mean`), which holds both the seeds' spread and
    the items' sampling; the standard deviation is the per-seed values'."""
    values = [value for rows in rows_by_run for value, _ in rows]
    clusters = [(run, draw) for run, rows in enumerate(rows_by_run) for _, draw in rows]
    estimate = clustered_mean(values, clusters, seed=seed)
    spread = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
    return SeedSummary(estimate.value, spread, estimate.low, estimate.high, len(per_seed))


def seed_table(runs, metrics, names: list[str],
               items: dict[int, list[tuple[float, object]]] | None = None) -> list[str]:
    """Mean +- standard deviation over seeds, with a 95% interval, per approach; approaches
    tied on the first metric (overlapping intervals) share a group number. The first metric's
    interval is the two-stage bootstrap's over the seeds' items (:func:`over_seeds`) when
    ``items`` has every seed's rows, else (and for the others) Student-t over the seeds."""
    main_runs = {r["id"]: _label(r, several_seeds=False) for r in runs
                 if not SIDE_RUN_FIELDS & json.loads(r["config_json"]).keys()}
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    directions: dict[str, bool] = {}
    for row in metrics:
        if row["run_id"] in main_runs and row["name"] in names:
            if json.loads(row["extra_json"]).get("verdict"):
                continue
            values[(main_runs[row["run_id"]], row["name"])].append(row["value"])
            if row["higher_is_better"] is not None:
                directions[row["name"]] = bool(row["higher_is_better"])
    approaches = list(dict.fromkeys(main_runs.values()))
    shown = [n for n in names if any((a, n) in values for a in approaches)][:3]
    if not shown:
        return []
    summaries = {key: seed_summary(v) for key, v in values.items()}
    lead = shown[0]
    runs_of: dict[str, list[int]] = defaultdict(list)
    for run_id, label in main_runs.items():
        runs_of[label].append(run_id)
    two_stage = set()
    for approach, run_ids in runs_of.items():
        per_seed = values.get((approach, lead), [])
        if items and len(run_ids) > 1 and all(items.get(r) for r in run_ids) \
                and len(per_seed) == len(run_ids):
            summaries[(approach, lead)] = over_seeds([items[r] for r in run_ids], per_seed)
            two_stage.add(approach)
    intervals = {a: (s.mean, s.low, s.high) for (a, n), s in summaries.items() if n == lead}
    groups = tied_groups(intervals, higher_is_better=directions.get(lead, True))
    group_of = {a: str(k) for k, group in enumerate(groups, start=1) for a in group}
    rows = [
        [a, group_of.get(a, "-"), *(
            f"{s.mean:.3f} +- {s.std:.3f} [{s.low:.3f}, {s.high:.3f}] (n={s.seeds})"
            if (s := summaries.get((a, n))) else "-" for n in shown)]
        for a in approaches
    ]
    method = ("t 95% interval; on " + lead + " of " + ", ".join(sorted(two_stage)) +
              ": two-stage bootstrap, seeds then items" if two_stage else "t 95% interval")
    return [f"over seeds: mean +- sd [{method}]; 'tied' groups share a number "
            f"(overlapping intervals on {lead})",
            *_table(["approach", "tied", *shown], rows)]
