"""Experiment matrices: approaches x sweep points x seeds, one cell (one run) each.

``--sweep dpo.beta=0.05,0.1,0.3`` (repeatable) adds the swept option's values to the matrix;
several sweeps of one approach multiply (a grid, as Ray Tune's ``grid_search`` and W&B's grid
sweeps do), and every approach the session runs is crossed with every seed. A cell is named
``dpo[beta=0.3]-seed1``: that is its pytest test id and, without the seed, its label in the
summary and the dashboard.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.overrides import OverrideError, parse_overrides
from harness.core.registry import Registry

# Imported by the dashboard (point_label), so torch (harness.core.compose) is imported only
# where a composition is split.


@dataclass(frozen=True)
class Sweep:
    """One ``--sweep approach.field=v1,v2`` option, its values typed like ``--set``'s."""

    approach: str
    field: str
    values: tuple[Any, ...]

    @property
    def key(self) -> str:
        return f"{self.approach}.{self.field}"


def _value_texts(text: str) -> list[str]:
    """``0.1,0.3`` -> two values; ``q_proj,v_proj;q_proj`` -> two list values (a ``;``
    separates the points when each point is itself a comma-separated list)."""
    separator = ";" if ";" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


def parse_sweeps(items: Iterable[str], registry: Registry) -> list[Sweep]:
    """Parse ``--sweep`` options, checking names and types as ``--set`` does."""
    sweeps: dict[str, Sweep] = {}
    for item in items:
        key, sep, text = item.partition("=")
        name, dot, field = key.strip().rpartition(".")
        if not sep or not dot or not text.strip():
            raise OverrideError(f"--sweep {item!r}: expected approach.field=value,value,..., "
                                "e.g. --sweep dpo.beta=0.05,0.1,0.3")
        values = []
        for value in _value_texts(text):
            try:
                parsed = parse_overrides([f"{name}.{field}={value}"], registry)
            except OverrideError as error:
                raise OverrideError(str(error).replace("--set", "--sweep", 1)) from None
            values.append(parsed[name][field])
        if len(set(map(repr, values))) != len(values):
            raise OverrideError(f"--sweep {item!r}: a value is repeated")
        sweep = Sweep(name, field, tuple(values))
        if sweep.key in sweeps:
            raise OverrideError(f"--sweep {sweep.key} is given twice; list every value in one "
                                f"option: --sweep {sweep.key}=v1,v2,...")
        sweeps[sweep.key] = sweep
    return list(sweeps.values())


def value_text(value: Any) -> str:
    """A swept value as labels write it: ``str`` of it, a list's items comma-joined."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(value_text, value))
    return str(value)


def swept_field(approach: str, key: str) -> str:
    """How a swept option reads in a label: ``dpo.beta`` of ``dpo`` is ``beta``; the key stays
    whole when its prefix names another approach (``dpo.beta`` of ``lora+dpo``)."""
    prefix, dot, field = key.partition(".")
    return field if dot and prefix == approach else key


def point_label(approach: str, sweep: Mapping[str, Any]) -> str:
    """``dpo`` + ``{"dpo.beta": 0.3}`` -> ``dpo[beta=0.3]``; in a composition the part is
    kept: ``lora+dpo[dpo.beta=0.3]``; the bare approach for a run that is no sweep point.
    Test ids, the summary and the dashboard all name cells with it."""
    if not sweep:
        return approach
    fields = [f"{swept_field(approach, key)}={value_text(value)}"
              for key, value in sweep.items()]
    return f"{approach}[{','.join(fields)}]"


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: an approach, a point of its sweeps and a seed."""

    approach: str
    seed: int
    point: tuple[tuple[str, Any], ...] = ()
    """``(("dpo.beta", 0.3), ...)``: the swept options, by ``approach.field``."""
    name_seed: bool = False
    """Whether the id names the seed (the session runs several)."""

    @property
    def sweep(self) -> dict[str, Any]:
        return dict(self.point)

    @property
    def label(self) -> str:
        """The approach and its point, without the seed: ``dpo[beta=0.3]``."""
        return point_label(self.approach, self.sweep)

    @property
    def id(self) -> str:
        """The test id: ``dpo[beta=0.3]-seed1`` (the seed only when several are run)."""
        return f"{self.label}-seed{self.seed}" if self.name_seed else self.label

    def overrides(self) -> dict[str, dict[str, Any]]:
        """The point as ``--set`` overrides: ``{"dpo": {"beta": 0.3}}``."""
        result: dict[str, dict[str, Any]] = {}
        for key, value in self.point:
            name, _, field = key.rpartition(".")
            result.setdefault(name, {})[field] = value
        return result


def build_cells(approaches: Sequence[str], sweeps: Sequence[Sweep],
                seeds: Sequence[int]) -> list[Cell]:
    """Every approach x the grid of the sweeps of its parts x every seed, in that order
    (the swept fields in name order, as the store keeps them)."""
    from harness.core.compose import split_name

    cells = []
    for approach in approaches:
        parts = split_name(approach)
        mine = sorted((s for s in sweeps if s.approach in parts), key=lambda s: s.key)
        grid = itertools.product(*[[(s.key, v) for v in s.values] for s in mine])
        for point in grid:
            for seed in seeds:
                cells.append(Cell(approach, seed, tuple(point), name_seed=len(seeds) > 1))
    return cells


def check_sweeps(sweeps: Sequence[Sweep], approaches: Sequence[str],
                 overrides: dict[str, dict[str, Any]]) -> None:
    """A sweep must name a part of an approach being run and no option ``--set`` fixes."""
    from harness.core.compose import split_name

    parts = {part for name in approaches for part in split_name(name)}
    for sweep in sweeps:
        if sweep.approach not in parts:
            raise OverrideError(
                f"--sweep {sweep.key}: {sweep.approach} is not among the approaches being run "
                f"({', '.join(approaches)}); add --approach={sweep.approach}")
        if sweep.field in overrides.get(sweep.approach, {}):
            raise OverrideError(f"--sweep {sweep.key} and --set {sweep.key} both give the "
                                "option; keep one")
