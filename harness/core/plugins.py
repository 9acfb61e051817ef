"""The plugin manager: built-in plugins, entry-point plugins and the registries they fill.

Follows simonw/llm's ``plugins.py``: built-in features are plugins like any other, listed in
``DEFAULT_PLUGINS``; third-party packages join through the ``tunebench`` entry-point group.
``TUNEBENCH_LOAD_PLUGINS`` (comma-separated distribution names, or empty for none) limits which
third-party plugins load, so test runs can exclude whatever happens to be installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os

import pluggy
from packaging.utils import canonicalize_name

from harness.core import hookspecs
from harness.core.approach import approach_declaration_problem
from harness.core.registry import Registry
from harness.measure.catalogue import Catalogue

DEFAULT_PLUGINS = (
    "harness.tasks.builtin",
    "harness.measure.catalogue",
    "plugins.prompting",
    "plugins.finetune",
    "plugins.peft_methods",
    "plugins.adapters",
    "plugins.rag",
    "plugins.dpo",
    "plugins.rlhf",
    "plugins.distill",
    "plugins.controls",
)

pm = pluggy.PluginManager("tunebench")
pm.add_hookspecs(hookspecs)


def _load_entry_point_plugins() -> None:
    allowed = os.environ.get("TUNEBENCH_LOAD_PLUGINS")
    if allowed is None:
        pm.load_setuptools_entrypoints("tunebench")
        return
    names = {canonicalize_name(name) for name in allowed.split(",") if name.strip()}
    for dist in importlib.metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in names:
            continue
        for entry_point in dist.entry_points.select(group="tunebench"):
            pm.register(entry_point.load(), name=entry_point.name)


_load_entry_point_plugins()

for _module in DEFAULT_PLUGINS:
    pm.register(importlib.import_module(_module), name=_module)


def approaches() -> Registry:
    """Every registered approach class by name (rebuilt per call: plugins may register late)."""
    registry: Registry = Registry("approach", check=approach_declaration_problem)
    pm.hook.register_approaches(register=registry.add)
    return registry


def task_declaration_problem(cls: object) -> str | None:
    """Why ``cls`` cannot be registered as a task (``None`` if it can)."""
    from harness.tasks.base import Task

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        return f"expected a subclass of harness.Task, got {cls!r}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        return f"{cls.__qualname__}.name must be a non-empty string, got {name!r}"
    return None


def metrics() -> Catalogue:
    """The metric catalogue: the built-in suites' metrics and every plugin's."""
    catalogue = Catalogue()
    pm.hook.register_metrics(register=catalogue.add)
    return catalogue


def tasks() -> Registry:
    """Every registered task class, by name."""
    registry: Registry = Registry("task", check=task_declaration_problem)
    pm.hook.register_tasks(register=registry.add)
    return registry
