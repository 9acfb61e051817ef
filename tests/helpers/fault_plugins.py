"""Faults injected into a runner subprocess (``-p fault_plugins``) by ``tests/test_faults.py``.

``TUNEBENCH_TEST_PAUSE=POINT[:APPROACH]`` stops the runner at one point of its work, once: it
writes ``POINT PID`` to the file named by ``TUNEBENCH_TEST_MARKER`` and sleeps, so the test can
kill or interrupt it exactly there, whatever the machine's speed. Points:

- ``training``: the trainer logged its first loss (the real approach is mid-training);
- ``saving``: the trained candidate's files are in its staging folder, not yet moved into the
  cache (``harness.train.trained``);
- ``scoring``: the generation-accuracy test recorded its first metric, after the choice test
  stored its metrics and per-item rows (``APPROACH`` names whose run).

``TUNEBENCH_TEST_FSIZE=BYTES`` with ``TUNEBENCH_TEST_DB=PATH``: once the candidate is ready, no
file may grow more than ``BYTES`` past the largest of the database and its WAL file
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so a write fails with ``EFBIG`` instead of killing
the process): a disk that fills up during scoring.
"""

import os
import resource
import signal
import sys
import time
from pathlib import Path

from harness.core.hookspecs import hookimpl
from harness.core.plugins import pm
from harness.train import trained

PAUSE = os.environ.get("TUNEBENCH_TEST_PAUSE", "")


def pause(point: str, approach: str = "") -> None:
    wanted, _, whose = PAUSE.partition(":")
    marker = Path(os.environ.get("TUNEBENCH_TEST_MARKER", "marker"))
    if wanted != point or (whose and whose != approach) or marker.exists():
        return
    marker.write_text(f"{point} {os.getpid()}")
    time.sleep(600)
    raise AssertionError(f"the runner paused at {point} was never stopped")


@hookimpl
def on_train_log(run_id, step, split, name, value):
    pause("training")


@hookimpl
def on_metric_recorded(run, metric):
    if metric["name"] == "gen_accuracy":
        pause("scoring", run.approach)


@hookimpl
def on_candidate_ready(candidate, run):
    extra = os.environ.get("TUNEBENCH_TEST_FSIZE")
    if extra:
        db = Path(os.environ["TUNEBENCH_TEST_DB"])
        largest = max(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest + int(extra),) * 2)


_checksums = trained.file_checksums


def _checksums_then_pause(folder: Path) -> dict[str, str]:
    if ".partial-" in folder.name:  # called on the staging folder, before the rename
        pause("saving")
    return _checksums(folder)


trained.file_checksums = _checksums_then_pause
pm.register(sys.modules[__name__], name="fault_plugins")
