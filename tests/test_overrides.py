"""``--set approach.field=value``: parsing, type checks and clear errors."""

import typing
from dataclasses import dataclass

import pytest

from harness.core import plugins
from harness.core.approach import Approach, option
from harness.core.overrides import (
    OptionError,
    OverrideError,
    build_config,
    check_option,
    parse_overrides,
)
from harness.core.plugins import approaches
from harness.core.registry import Registry, UnknownNameError
from harness.runner.session import ExperimentSession, SessionOptions
from harness.train.sft import TrainingConfig


@dataclass
class ToyConfig:
    r: int = option(16, "rank")
    dropout: float = option(0.05, "dropout")
    merge: bool = option(False, "merge weights")
    targets: list[str] = option(["q_proj", "v_proj"], "modules")
    limit: int | None = option(None, "optional cap")


class Toy(Approach):
    name = "toy"
    kind = "prompting"
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


def configure(*items: str) -> dict[str, object]:
    """The configs ``--set items`` give, built as the session builds them."""
    registry = approaches()
    return {name: build_config(registry.get(name), values)
            for name, values in parse_overrides(items, registry).items()}


def test_every_registered_default_config_is_valid():
    registry = approaches()
    for name in registry:
        cls = registry.get(name)
        assert isinstance(build_config(cls, {}), cls.Config), name
    TrainingConfig()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lora.r=-1", "--set 'lora.r=-1': must be a positive integer"),
        ("qlora.r=0", "--set 'qlora.r=0': must be a positive integer"),
        ("lora.alpha=0", "--set 'lora.alpha=0': must be a positive integer"),
        ("lora.dropout=1", "--set 'lora.dropout=1.0': must be a probability in [0, 1)"),
        ("lora.dropout=-0.1", "--set 'lora.dropout=-0.1': must be a probability in [0, 1)"),
        ("lora.target_modules=all-linear,q_proj", "all-linear already means every linear"),
        ("lora.learning_rate=-1e-4", "--set 'lora.learning_rate=-0.0001': must be a number >= 0"),
        ("lora.learning_rate=inf", "--set 'lora.learning_rate=inf': must be a number >= 0"),
        ("full-ft.epochs=0", "--set 'full-ft.epochs=0.0': must be a number > 0"),
        ("full-ft.max_steps=0", "--set 'full-ft.max_steps=0': must be -1 (train for epochs)"),
        ("peft.batch_size=0", "--set 'peft.batch_size=0': must be a positive integer"),
        ("adapters.max_length=0", "--set 'adapters.max_length=0': must be a positive number"),
        ("adapters.warmup=2.5", "--set 'adapters.warmup=2.5': must be a fraction of the steps"),
        ("adapters.warmup=-0.1", "--set 'adapters.warmup=-0.1': must be a fraction of the steps"),
        ("lora.weight_decay=-1", "--set 'lora.weight_decay=-1.0': must be a number >= 0"),
        ("lora.eval_every=-1", "--set 'lora.eval_every=-1': must be >= 0"),
        ("lora.early_stopping_patience=-1", "--set 'lora.early_stopping_patience=-1': must be"),
        ("adapters.bottleneck=0", "--set 'adapters.bottleneck=0': must be a positive integer"),
        ("adapters.activation=swish", "--set 'adapters.activation=swish': must be one of gelu"),
        ("adapters.targets=", "--set 'adapters.targets=': name at least one linear layer"),
        ("few-shot.k=-1", "--set 'few-shot.k=-1': must be >= 0"),
        ("rag.top_k=0", "--set 'rag.top_k=0': must be a positive number of passages"),
        ("rag.chunk_size=0", "--set 'rag.chunk_size=0': must be a positive number of words"),
        ("rag.chunk_overlap=120", "--set 'rag.chunk_overlap=120': must be >= 0 and smaller than "
                                  "chunk_size (120)"),
        ("rag.template=Context: {passages}", "--set 'rag.template=Context: {passages}': must "
                                             "contain {passages} and {question}"),
        ("rag.template={passages} {question} {extra}", "no other {field}"),
        ("rag.embedding_model=", "--set 'rag.embedding_model=': must name a model"),
        ("dpo.beta=0", "--set 'dpo.beta=0.0': must be a number > 0"),
        ("dpo.r=0", "--set 'dpo.r=0': must be a positive integer"),
        ("rlhf.generations=1", "--set 'rlhf.generations=1': must be at least 2"),
        ("rlhf.beta=-1", "--set 'rlhf.beta=-1.0': must be a number >= 0"),
        ("rlhf.reward_learning_rate=-1", "--set 'rlhf.reward_learning_rate=-1.0': must be"),
        ("rlhf.reward_epochs=0", "--set 'rlhf.reward_epochs=0.0': must be a number > 0"),
        ("rlhf.rl_prompts=0", "--set 'rlhf.rl_prompts=0': must be a positive number"),
        ("rlhf.completion_tokens=0", "--set 'rlhf.completion_tokens=0': must be a positive"),
        ("rlhf.temperature=0", "--set 'rlhf.temperature=0.0': must be a number > 0"),
        ("rlhf.batch_size=6", "--set 'rlhf.batch_size=6': must be a multiple of generations (4)"),
    ],
)
def test_out_of_range_values_name_the_option(item, message):
    with pytest.raises(OverrideError) as error:
        configure(item)
    assert message in str(error.value)


def test_a_rule_between_two_fields_says_which_value_is_the_default():
    with pytest.raises(OverrideError) as error:
        configure("rag.chunk_size=10")
    assert str(error.value) == (
        "'rag.chunk_overlap=20' (the default): must be >= 0 and smaller than chunk_size (10)"
    )
    with pytest.raises(OverrideError, match=r"'rlhf.batch_size=8' \(the default\): must be a "
                                            r"multiple of generations \(3\)"):
        configure("rlhf.generations=3")
    assert configure("rag.chunk_size=10", "rag.chunk_overlap=0")["rag"].chunk_size == 10


def test_valid_values_at_the_edges_are_accepted():
    configs = configure(
        "lora.r=1", "lora.dropout=0", "lora.learning_rate=0", "lora.max_steps=1",
        "lora.target_modules=all-linear", "lora.warmup=0.99", "few-shot.k=0",
        "rag.chunk_size=1", "rag.chunk_overlap=0", "rag.retriever=bm25",
        "rag.template={{note}} {passages} / {question}", "rlhf.beta=0", "rlhf.generations=2",
        "full-ft.warmup=10",
    )
    assert configs["lora"].r == 1 and configs["lora"].learning_rate == 0  # lr 0: frozen controls
    assert configs["lora"].target_modules == ["all-linear"]
    assert configs["few-shot"].k == 0
    assert configs["rag"].retriever == "bm25" and configs["rag"].chunk_overlap == 0
    assert configs["rlhf"].generations == 2 and configs["full-ft"].warmup == 10


def test_configs_check_their_values_when_built_directly():
    registry = approaches()
    lora, rag = registry.get("lora").Config, registry.get("rag").Config
    with pytest.raises(OptionError) as error:
        lora(r=-1)
    assert error.value.field == "r"
    assert str(error.value) == "r: must be a positive integer (the rank)"
    with pytest.raises(OptionError, match="retriever: must be one of bm25, dense, hybrid"):
        rag(retriever="nonsense")
    with pytest.raises(OptionError, match="batch_size: must be a positive integer"):
        TrainingConfig(batch_size=0)


def test_retriever_choices_are_the_registered_retrievers():
    from harness.retrieval.retrievers import RETRIEVERS

    hint = typing.get_type_hints(approaches().get("rag").Config)["retriever"]
    assert set(typing.get_args(hint)) == set(RETRIEVERS)


def test_an_option_error_keeps_its_field_through_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(OptionError("r", "must be a positive integer")))
    assert (error.field, error.message) == ("r", "must be a positive integer")
    assert isinstance(error, ValueError)


def session(tmp_path, approaches_: list[str], *overrides: str) -> ExperimentSession:
    return ExperimentSession(SessionOptions(
        approaches=approaches_, budget="smoke", results=tmp_path / "results" / "r.db",
        overrides=list(overrides),
    ))


@pytest.mark.parametrize(
    ("chosen", "item", "message"),
    [
        (["lora"], "lora.r=-1", "--set 'lora.r=-1': must be a positive integer"),
        (["rag"], "rag.retriever=nonsense",
         "--set 'rag.retriever=nonsense': 'nonsense' is not one of bm25, dense, hybrid"),
        (["lora+rag"], "rag.top_k=0", "--set 'rag.top_k=0': must be a positive number"),
        (["zero-shot"], "lora.r=-1", "--set 'lora.r=-1'"),  # overridden, even if not run
    ],
)
def test_a_bad_value_stops_the_session_before_anything_is_recorded(
        tmp_path, chosen, item, message):
    with pytest.raises(OverrideError) as error:
        session(tmp_path, chosen, item)
    assert message in str(error.value)
    assert not (tmp_path / "results").exists()  # the store was never opened


def test_a_valid_override_reaches_the_approach(tmp_path):
    s = session(tmp_path, ["lora+rag"], "lora.r=4", "rag.top_k=2")
    assert s.make_approach("lora+rag").config_dict()["lora"]["r"] == 4
    assert s.make_approach("rag").config.top_k == 2
    assert not (tmp_path / "results").exists()


@dataclass
class BrokenConfig:
    size: int = option(0, "a default its own check refuses")

    def __post_init__(self) -> None:
        check_option(self.size >= 1, "size", "must be a positive integer")


class Broken(Approach):
    name = "broken"
    kind = "prompting"
    description = "test: an approach whose default config is invalid"
    Config = BrokenConfig

    def prepare(self, ctx):
        raise NotImplementedError


@pytest.mark.parametrize("chosen", [["broken"], ["broken+rag"], ["all"]])
def test_the_session_checks_the_configs_of_the_approaches_it_runs(tmp_path, monkeypatch, chosen):
    real = plugins.approaches

    def with_broken() -> Registry:
        registry = real()
        registry.register("broken", Broken)
        return registry

    monkeypatch.setattr(plugins, "approaches", with_broken)
    with pytest.raises(OverrideError, match=r"^'broken.size=0' \(the default\): must be"):
        session(tmp_path, chosen)
    session(tmp_path, ["zero-shot"])  # not run, not overridden: not built
    assert not (tmp_path / "results").exists()


@dataclass
class PairsConfig:
    names: dict[str, str] = option({}, "value=name pairs")
    sizes: dict[str, int] = option({}, "name=size pairs")


class Pairs(Approach):
    name = "pairs"
    kind = "prompting"
    description = "test: an approach with mapping options"
    Config = PairsConfig

    def prepare(self, ctx):
        raise NotImplementedError


def test_mapping_options_take_comma_separated_name_value_pairs():
    registry: Registry = Registry("approach")
    registry.register("pairs", Pairs)
    parsed = parse_overrides(["pairs.names=0=negative, 1 = positive", "pairs.sizes=a=1,b=2"],
                             registry)
    assert parsed == {"pairs": {"names": {"0": "negative", "1": "positive"},
                                "sizes": {"a": 1, "b": 2}}}
    with pytest.raises(OverrideError, match=r"expected name=value pairs .* got 'positive'"):
        parse_overrides(["pairs.names=0=negative,positive"], registry)
    with pytest.raises(OverrideError, match="expected int, got 'big'"):
        parse_overrides(["pairs.sizes=a=big"], registry)


def test_task_options_without_a_data_file_task_are_refused(registry):
    with pytest.raises(OverrideError, match=r"^--set 'task.labels=a,b': task options apply to "
                                            r"data files \(--task=PATH or hf:<id>\)$"):
        parse_overrides(["task.labels=a,b"], registry)
