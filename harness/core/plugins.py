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
from harness.core.registry import Registry

DEFAULT_PLUGINS = (
    "harness.tasks.builtin",
    "plugins.prompting",
    "plugins.finetune",
    "plugins.peft_methods",
    "plugins.adapters",
    "plugins.rag",
    "plugins.dpo",
    "plugins.rlhf",
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
    registry: Registry = Registry("approach")
    pm.hook.register_approaches(register=lambda cls: registry.register(cls.name, cls))
    return registry


def tasks() -> Registry:
    """Every registered task class, by name."""
    registry: Registry = Registry("task")
    pm.hook.register_tasks(register=lambda cls: registry.register(cls.name, cls))
    return registry
