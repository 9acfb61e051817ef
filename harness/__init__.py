"""tunebench: an evaluation-first harness for choosing how to adapt a language model.

The public surface for plugin authors is this package's top level (and :mod:`harness.testing`
for their tests); everything else is internal and may move. Names are imported on first use
(PEP 562), so ``import harness`` stays cheap for tools that need only part of it.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Approach": "harness.core.approach",
    "Candidate": "harness.core.approach",
    "RunContext": "harness.core.approach",
    "KINDS": "harness.core.kinds",
    "option": "harness.core.approach",
    "hookimpl": "harness.core.hookspecs",
    "check_option": "harness.core.overrides",
    "OptionError": "harness.core.overrides",
    "ReadsDocuments": "harness.core.capabilities",
    "CarriesRewardModel": "harness.core.capabilities",
    "RewritesPrompts": "harness.core.capabilities",
    "TaughtByTeacher": "harness.core.capabilities",
    "LMCandidate": "harness.models.lm_candidate",
    "TrainedApproach": "harness.train.trained",
    "TrainingConfig": "harness.train.sft",
    "TrainingResult": "harness.train.sft",
    "Task": "harness.tasks.base",
    "TaskData": "harness.tasks.base",
    "Example": "harness.tasks.base",
    "Message": "harness.tasks.base",
    "Passage": "harness.tasks.base",
    "Metric": "harness.measure.catalogue",
}
"""Public name -> the module that defines it."""

__all__ = [
    "KINDS", "Approach", "Candidate", "CarriesRewardModel", "Example", "LMCandidate", "Message",
    "Metric", "OptionError", "Passage", "ReadsDocuments", "RewritesPrompts", "RunContext", "Task",
    "TaskData", "TaughtByTeacher", "TrainedApproach", "TrainingConfig", "TrainingResult",
    "check_option", "hookimpl", "option",
]

if TYPE_CHECKING:
    from harness.core.approach import Approach, Candidate, RunContext, option
    from harness.core.capabilities import (
        CarriesRewardModel,
        ReadsDocuments,
        RewritesPrompts,
        TaughtByTeacher,
    )
    from harness.core.hookspecs import hookimpl
    from harness.core.kinds import KINDS
    from harness.core.overrides import OptionError, check_option
    from harness.measure.catalogue import Metric
    from harness.models.lm_candidate import LMCandidate
    from harness.tasks.base import Example, Message, Passage, Task, TaskData
    from harness.train.sft import TrainingConfig, TrainingResult
    from harness.train.trained import TrainedApproach


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


class _DropMessage(logging.Filter):
    """Drops one known, harmless library message; everything else passes."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# bitsandbytes tries to fetch an optional CPU kernel from a model hub at import and warns when
# it cannot; its built-in CPU path is used instead, so the warning tells users nothing.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    _DropMessage("Failed to load CPU gemm_4bit_forward")
)
