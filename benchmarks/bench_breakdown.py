"""Where the wall time of a comparison goes: per approach, per phase and per suite.

Runs ``pytest suites/`` (by default ``make bench``'s comparison: every approach, quick
budget) with a JUnit report into a fresh results database, then reads both back:

- ``prepare``: preparing the candidate (model load, training with its validation passes,
  index building), from each run's recorded ``prepare_seconds``, ``train_seconds`` and
  ``validation_seconds``;
- one column per suite: the wall time of that suite's tests for the approach, the prepare
  time taken out of the test that triggered it. The first candidate's ``forgetting`` column
  also holds the base model's scoring (done once per session and shared).

    python benchmarks/bench_breakdown.py                     # run make bench's comparison
    python benchmarks/bench_breakdown.py --precision fp32    # extra pytest options pass through
    python benchmarks/bench_breakdown.py --read OUT_DIR      # tabulate an earlier run

Trained candidates are cached between sessions: pass ``--retrain`` (the default here) so
training is measured, or ``--no-retrain`` to time the suites on cached candidates.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_ID = re.compile(r"^(?P<test>[^\[]+)\[(?P<approach>[^\]]+)\]$")


def run_comparison(out: Path, extra: list[str]) -> float:
    """Run the suites into ``out``; the wall seconds of the pytest process."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", "suites/", "--approach=all", "--budget=quick",
               f"--results={out / 'tunebench.db'}", f"--junitxml={out / 'junit.xml'}",
               "-p", "no:cacheprovider", "-q", *extra]
    started = time.perf_counter()
    with open(out / "log.txt", "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - started
    (out / "wall_seconds").write_text(f"{wall:.1f}\n")
    return wall


def approach_of(name: str, approaches: set[str]) -> str | None:
    """The approach a test id's bracket names: ``test_latency[lora]`` -> ``lora``; a
    parametrized test's ``test_general_probes[full-ft-chat]`` -> ``full-ft`` (the longest
    approach of the run the bracket starts with, then a ``-``)."""
    match = TEST_ID.match(name)
    if not match:
        return None
    bracket = match["approach"]
    known = [a for a in approaches if bracket == a or bracket.startswith(a + "-")]
    return max(known, key=len) if known else bracket


def suite_times(junit: Path, approaches: set[str]) -> dict[str, dict[str, float]]:
    """approach -> suite -> seconds of its tests (setup, call and teardown)."""
    times: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for case in ET.parse(junit).getroot().iter("testcase"):
        approach = approach_of(case.get("name", ""), approaches)
        if approach is None:
            continue
        suite = case.get("classname", "").rpartition(".")[2].removeprefix("test_")
        times[approach][suite] += float(case.get("time", 0.0))
    return times


def first_suites(junit: Path, approaches: set[str]) -> dict[str, str]:
    """approach -> the suite of its first test (whose setup prepared the candidate)."""
    first: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        approach = approach_of(case.get("name", ""), approaches)
        if approach is not None and approach not in first:
            suite = case.get("classname", "").rpartition(".")[2].removeprefix("test_")
            first[approach] = suite
    return first


def prepare_info(db: Path) -> dict[str, dict[str, float]]:
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT approach, info_json FROM runs ORDER BY id").fetchall()
    finally:
        connection.close()
    return {approach: json.loads(info) for approach, info in rows}


def breakdown(out: Path) -> str:
    """The Markdown table of one run in ``out``."""
    junit, db = out / "junit.xml", out / "tunebench.db"
    info = prepare_info(db)
    times, first = suite_times(junit, set(info)), first_suites(junit, set(info))
    suites = sorted({s for per in times.values() for s in per})
    header = ["approach", "prepare", "(train)", "(validation)", *suites, "total"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    totals: dict[str, float] = defaultdict(float)
    for approach, per in times.items():
        facts = info.get(approach, {})
        prepare = float(facts.get("prepare_seconds", 0.0))
        per = dict(per)
        if approach in first:
            per[first[approach]] = max(0.0, per[first[approach]] - prepare)
        train = float(facts.get("train_seconds", 0.0) or 0.0)
        validation = float(facts.get("validation_seconds", 0.0) or 0.0)
        row = {"prepare": prepare, "(train)": train, "(validation)": validation, **per}
        row["total"] = prepare + sum(per.values())
        for key, value in row.items():
            totals[key] += value
        lines.append("| " + " | ".join(
            [approach, *(f"{row.get(c, 0.0):.0f}" for c in header[1:])]) + " |")
    lines.append("| **all** | " + " | ".join(f"**{totals[c]:.0f}**" for c in header[1:]) + " |")
    wall = out / "wall_seconds"
    if wall.is_file():
        lines.append(f"\nwall time of the pytest process: {float(wall.read_text()):.0f} s "
                     "(the rest: start-up, collection, model conversion if not cached)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "breakdown",
                        help="folder for the results database, JUnit report and log")
    parser.add_argument("--read", type=Path, help="tabulate an earlier run's folder instead")
    parser.add_argument("--no-retrain", action="store_true",
                        help="reuse cached trained candidates (times the suites only)")
    args, extra = parser.parse_known_args()
    if args.read:
        print(breakdown(args.read))
        return
    if not args.no_retrain:
        extra.append("--retrain")
    run_comparison(args.out, extra)
    print(breakdown(args.out))


if __name__ == "__main__":
    main()
