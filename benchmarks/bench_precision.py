"""bf16 against fp32: the same candidates, seeds and items measured in both precisions.

    python benchmarks/bench_precision.py --task sentiment --approach zero-shot,lora,full-ft
    python benchmarks/bench_precision.py --task kb-qa --approach zero-shot,lora,full-ft
    python benchmarks/bench_precision.py --read results/precision/sentiment   # tabulate again

Runs the accuracy suite once per precision (``--retrain``, so training is timed too) into
``OUT/<task>/<precision>.db`` and prints, per approach and headline metric, both estimates
with their 95% bootstrap CIs, the paired difference bf16 - fp32 on the same items (paired
bootstrap CI, items fixed/broken, exact McNemar p) and the time of each phase: training
(``train_seconds``) and the suite's scoring (from the JUnit report).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.measure.compare import paired_comparison  # noqa: E402

PRECISIONS = ("fp32", "bf16")
SUITE_PARTS = {"accuracy": "accuracy.choice", "gen_accuracy": "accuracy.generation"}


def run(task: str, approaches: str, precision: str, out: Path, extra: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    db, junit = out / f"{precision}.db", out / f"{precision}.xml"
    db.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "suites/test_accuracy.py", f"--task={task}",
               f"--approach={approaches}", f"--precision={precision}", "--budget=quick",
               "--retrain", f"--results={db}", f"--junitxml={junit}", "-q",
               "-p", "no:cacheprovider", *extra]
    with open(out / f"{precision}.log", "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)


def scoring_seconds(junit: Path, prepare: dict[str, float]) -> dict[str, float]:
    """Seconds of each approach's accuracy tests, its prepare time taken out."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if "[" in name:
            seconds[name.split("[", 1)[1].rstrip("]")] += float(case.get("time", 0.0))
    return {a: max(0.0, s - prepare.get(a, 0.0)) for a, s in seconds.items()}


def load(db: Path) -> tuple[dict, dict, dict]:
    """(metrics, per-item correctness, run info), each by approach."""
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        runs = {r["id"]: r for r in connection.execute("SELECT * FROM runs")}
        metrics: dict = defaultdict(dict)
        for m in connection.execute("SELECT * FROM metrics WHERE suite = 'accuracy'"):
            metrics[runs[m["run_id"]]["approach"]][m["name"]] = m
        items: dict = defaultdict(dict)
        for e in connection.execute("SELECT run_id, suite, item_id, correct FROM examples"):
            items[runs[e["run_id"]]["approach"]].setdefault(e["suite"], {})[e["item_id"]] = (
                bool(e["correct"]))
        info = {r["approach"]: json.loads(r["info_json"]) for r in runs.values()}
    finally:
        connection.close()
    return metrics, items, info


def estimate(metric) -> str:
    return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def table(out: Path) -> str:
    (m32, i32, f32), (m16, i16, f16) = load(out / "fp32.db"), load(out / "bf16.db")
    s32 = scoring_seconds(out / "fp32.xml", {a: f.get("prepare_seconds", 0)
                                             for a, f in f32.items()})
    s16 = scoring_seconds(out / "bf16.xml", {a: f.get("prepare_seconds", 0)
                                             for a, f in f16.items()})
    lines = ["| approach | metric | fp32 | bf16 | bf16 - fp32 (paired) | fixed / broken "
             "(McNemar p) | train s fp32 / bf16 | scoring s fp32 / bf16 |", "|" + "---|" * 8]
    for approach in m32:
        for name, part in SUITE_PARTS.items():
            if name not in m32[approach] or name not in m16.get(approach, {}):
                continue
            a, b = i32[approach][part], i16[approach][part]
            ids = [i for i in a if i in b]
            c = paired_comparison([a[i] for i in ids], [b[i] for i in ids])
            train = (f"{f32[approach].get('train_seconds', 0) or 0:.0f} / "
                     f"{f16[approach].get('train_seconds', 0) or 0:.0f}")
            lines.append(
                f"| {approach} | {name} | {estimate(m32[approach][name])} | "
                f"{estimate(m16[approach][name])} | {c.delta.value:+.3f} [{c.delta.low:+.3f}, "
                f"{c.delta.high:+.3f}] | {c.fixed} / {c.broken} ({c.p_value:.2f}) | {train} | "
                f"{s32.get(approach, 0):.0f} / {s16.get(approach, 0):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--approach", default="zero-shot,lora,full-ft")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "precision")
    parser.add_argument("--read", type=Path, help="tabulate an earlier run's folder")
    args, extra = parser.parse_known_args()
    if args.read:
        print(table(args.read))
        return
    out = args.out / args.task.replace("/", "_")
    for precision in PRECISIONS:
        run(args.task, args.approach, precision, out, extra)
    print(table(out))


if __name__ == "__main__":
    main()
