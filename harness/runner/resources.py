"""Peak memory around a piece of work: process RSS high-water mark, or CUDA max allocated.

On Linux the RSS high-water mark (``VmHWM``) is reset by writing ``5`` to
``/proc/self/clear_refs`` (proc(5)), so the peak of one phase is measured, not the process's
lifetime peak; elsewhere ``ru_maxrss`` is the fallback.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_rss_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _rss_peak_bytes() -> int:
    if _STATUS.exists():
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, int | str]]:
    """Yields a dict filled on exit with ``peak_memory_bytes`` and how it was measured."""
    result: dict[str, int | str] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        phase = _reset_rss_peak()
    yield result
    if device.type == "cuda":
        result["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
        result["peak_memory_kind"] = "cuda_max_allocated"
    else:
        result["peak_memory_bytes"] = _rss_peak_bytes()
        result["peak_memory_kind"] = "rss_peak" if phase else "rss_peak_lifetime"
