"""Tasks: built-in generated tasks and users' own data files behind one ``Task`` interface."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness.tasks.base import Example, Task, TaskData

__all__ = ["DataFileTask", "Example", "Task", "TaskData", "resolve_task"]


class DataFileTask(Task):
    """A task read from a user's file, folder or Hugging Face dataset (``harness.data``)."""

    name: ClassVar[str] = "file"
    description: ClassVar[str] = "your own data: a JSONL/CSV/parquet file, a folder or hf:<id>"

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def load(self, seed: int) -> TaskData:
        from harness.data.load import load_task_data

        return load_task_data(self.spec, seed)


def resolve_task(spec: str) -> Task:
    """A registered task by name, or a data path / ``hf:`` id wrapped as a task.

    Raises ``UnknownNameError`` (with "did you mean") for anything else.
    """
    from harness.core.plugins import tasks

    registry = tasks()
    if spec in registry:
        return registry.get(spec)()
    if spec.startswith("hf:") or Path(spec).expanduser().exists():
        return DataFileTask(spec)
    registry.get(spec)  # raises, listing the registered tasks
    raise AssertionError("unreachable")
