"""The base model's own scores, kept across sessions: what does not depend on the candidate.

Every session compares its candidates with the base model on the same probes (the forgetting
suite's general probes in chat and raw mode, its held-out text's perplexity). Those scores
depend on the base model's weights, the precision, the probes and the scoring code, not on
any candidate or session, so they are computed once and kept in the cache folder
(``TUNEBENCH_CACHE``, beside the trained candidates), keyed by all of these: the model's
version (``BaseModelSpec.version``: its config and weight files), the precision, a hash of the
probes themselves and a hash of the sources that score them (:data:`SCORER_SOURCES`, not all of
harness/, so an edit elsewhere keeps them). Each file carries the SHA-256 of its content, as
cached candidates do (``harness.train.trained.cache_problem``); a file that fails it is scored
again and replaced, with a warning. Scores do not depend on the batch or the thread count
(:mod:`harness.models.scoring`), so a kept score is the one a new computation would give.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.models.loading import cache_dir
from harness.runner.provenance import PROJECT_ROOT, stable_hash

SCORER_SOURCES = (
    "harness/models/*.py", "harness/measure/evaluate.py", "harness/measure/base_scores.py",
    "harness/tasks/base.py", "harness/tasks/general/*.py", "harness/core/approach.py",
)
"""The code a base score depends on (globs under the project root)."""
FOLDER = "base-scores"


@functools.cache
def scorer_hash() -> str:
    """SHA-256 (16 hex digits) of :data:`SCORER_SOURCES`."""
    digest = hashlib.sha256()
    for file in sorted({f for pattern in SCORER_SOURCES for f in PROJECT_ROOT.glob(pattern)}):
        digest.update(file.relative_to(PROJECT_ROOT).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _content_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def kept_scores(key: Mapping[str, Any], compute: Callable[[], Any], *,
                folder: Path | None = None) -> Any:
    """``compute()``'s JSON-able result for ``key`` (model version, precision, probe hash,
    what is scored), read from the cache when a session already computed it (module
    docstring); tuples come back as lists."""
    folder = (folder or cache_dir()) / FOLDER
    path = folder / f"{stable_hash({**key, 'scorer': scorer_hash()})}.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved["sha256"] == _content_hash(saved["value"]):
                return saved["value"]
            problem = "its content does not match its SHA-256"
        except (OSError, ValueError, KeyError, TypeError) as error:
            problem = f"it cannot be read ({error})"
        warnings.warn(f"kept base-model scores {path}: {problem}; scoring again", stacklevel=2)
    value = json.loads(json.dumps(compute()))  # as it will be read back: tuples as lists
    folder.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump({"key": dict(key), "sha256": _content_hash(value), "value": value}, stream)
        os.replace(staging, path)  # whole or not at all, also against a concurrent writer
    finally:
        Path(staging).unlink(missing_ok=True)
    return value


def probe_hash(items: Any) -> str:
    """What identifies a probe set: every item's id, messages, choices and answer."""
    return stable_hash([[e.id, e.messages, list(e.choices or ()), e.answer] for e in items])
