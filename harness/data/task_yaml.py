"""A data folder's optional ``task.yaml``: the task options kept next to the data.

A folder of split files may hold ``task.yaml`` with the options ``--set task.NAME=VALUE``
would give (``metric: chrf``, ``scoring: generation``, ``labels: [negative, positive]``,
``columns: {input: sentence, output: label}``...), so whoever runs the folder measures it the
same way. Options given on the command line win over the file's. A key the task does not
take, or a value it refuses, is a :class:`DataError` naming the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.errors import DataError

FILE_NAME = "task.yaml"


def _lines(text: str) -> dict[str, int]:
    """Each top-level key's line number (1-based), from the YAML parse tree."""
    import yaml

    node = yaml.compose(text)
    if node is None or not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value}


def folder_task_options(spec: str, task: Any) -> dict[str, Any]:
    """The options of ``spec``'s ``task.yaml`` (``{}`` if ``spec`` is no folder or has none),
    typed and checked by ``task``'s ``Config`` as ``--set task.NAME=VALUE`` would be."""
    import yaml

    from harness.core.overrides import (
        OverrideError,
        build_config,
        option_text,
        parse_overrides,
    )
    from harness.core.plugins import approaches

    path = Path(spec).expanduser() / FILE_NAME
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}{at}: not valid YAML ({getattr(error, 'problem', error)}); "
                        "write one 'option: value' per line, e.g. 'metric: chrf'") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DataError(f"{path}:1: expected 'option: value' lines (a mapping), got a "
                        f"{type(loaded).__name__}; e.g. 'metric: chrf'")
    lines = _lines(text)
    options: dict[str, Any] = {}
    for key, value in loaded.items():
        item = f"task.{key}={option_text(value)}"
        try:
            parsed = parse_overrides([item], approaches(), task)["task"]
            build_config(task, parsed, name="task")
        except (OverrideError, ValueError) as error:
            reason = str(error).split(": ", 1)[-1] if str(error).startswith("--set") else error
            raise DataError(f"{path}:{lines.get(str(key), 1)}: field {key!r}: {reason}") from None
        options.update(parsed)
    return options
