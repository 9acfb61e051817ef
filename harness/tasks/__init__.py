"""Tasks: built-in generated tasks and users' own data files behind one ``Task`` interface.

``DataFileTask`` (:mod:`harness.tasks.data_file`) is imported on first use: it needs the
approach contracts, which import this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.tasks.base import Example, Task, TaskData

if TYPE_CHECKING:
    from harness.tasks.data_file import DataFileTask

__all__ = ["DataFileTask", "Example", "Task", "TaskData", "resolve_task"]


def __getattr__(name: str) -> Any:
    if name == "DataFileTask":
        from harness.tasks.data_file import DataFileTask

        return DataFileTask
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_task(spec: str, options: Mapping[str, Any] | None = None) -> Task:
    """A registered task by name, or a data path / ``hf:`` id wrapped as a task.

    ``options`` (field -> value, as parsed from ``--set task.NAME=VALUE``) configure the
    task: a data-file task takes :class:`~harness.tasks.data_file.DataFileConfig`'s, a
    built-in task only ``metric``; any other raises ``ValueError``.
    Raises ``UnknownNameError`` (with "did you mean") for anything else.
    """
    from harness.core.overrides import build_config
    from harness.core.plugins import tasks

    registry = tasks()
    if spec in registry:
        cls = registry.get(spec)
        extra = [name for name in options or {} if name != "metric"]
        if extra:
            given = ", ".join(f"task.{name}" for name in extra)
            raise ValueError(f"task options ({given}) apply to data files (--task=PATH or "
                             f"hf:<id>); {spec!r} is a built-in task and takes only task.metric")
        return cls(build_config(cls, dict(options or {}), name="task")) if options else cls()
    if spec.startswith("hf:") or Path(spec).expanduser().exists():
        from harness.tasks.data_file import DataFileTask

        return DataFileTask(spec, build_config(DataFileTask, dict(options or {}), name="task"))
    registry.get(spec)  # raises, listing the registered tasks
    raise AssertionError("unreachable")
