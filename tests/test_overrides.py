"""``--set approach.field=value``: parsing, type checks and clear errors."""

from dataclasses import dataclass

import pytest

from harness.core.approach import Approach, option
from harness.core.overrides import OverrideError, build_config, parse_overrides
from harness.core.plugins import approaches
from harness.core.registry import Registry, UnknownNameError


@dataclass
class ToyConfig:
    r: int = option(16, "rank")
    dropout: float = option(0.05, "dropout")
    merge: bool = option(False, "merge weights")
    targets: list[str] = option(["q_proj", "v_proj"], "modules")
    limit: int | None = option(None, "optional cap")


class Toy(Approach):
    name = "toy"
    description = "test"
    Config = ToyConfig

    def prepare(self, ctx):
        raise NotImplementedError


@pytest.fixture
def registry():
    registry: Registry = Registry("approach")
    registry.register("toy", Toy)
    return registry


def test_values_are_converted_to_field_types(registry):
    overrides = parse_overrides(
        ["toy.r=8", "toy.dropout=0.1", "toy.merge=yes", "toy.targets=q_proj,k_proj",
         "toy.limit=none"], registry,
    )
    config = build_config(Toy, overrides["toy"])
    assert config == ToyConfig(r=8, dropout=0.1, merge=True, targets=["q_proj", "k_proj"],
                               limit=None)
    assert build_config(Toy, parse_overrides(["toy.limit=3"], registry)["toy"]).limit == 3


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("toy.dropuot=0.1", "toy has no option 'dropuot'. Did you mean 'dropout'?"),
        ("toy.r=eight", "expected int, got 'eight'"),
        ("toy.merge=maybe", "expected true or false"),
        ("toy-r=8", "expected approach.field=value"),
        ("toy.r", "expected approach.field=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(registry, item, message):
    with pytest.raises(OverrideError) as error:
        parse_overrides([item], registry)
    assert message in str(error.value)


def test_unknown_approach_in_override(registry):
    with pytest.raises(UnknownNameError, match="Did you mean 'toy'"):
        parse_overrides(["tony.r=8"], registry)


def test_every_registered_config_field_is_documented():
    import dataclasses

    registry = approaches()
    for name in registry:
        for field in dataclasses.fields(registry.get(name).Config):
            assert field.metadata.get("help"), f"{name}.{field.name} has no help text"
