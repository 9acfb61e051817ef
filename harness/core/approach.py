"""The contracts between the harness and approach plugins: Approach, Candidate, RunContext, Budget.

An :class:`Approach` turns task data into a :class:`Candidate` in ``prepare(ctx)``; suites then
measure every candidate the same way through ``generate`` and ``score_choices``. The harness,
not the plugin, times ``prepare`` and records provenance, so every approach is measured alike.
Config dataclasses document each field in ``metadata["help"]`` (the PEFT config habit).
"""

from __future__ import annotations

import contextlib
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.core.kinds import KINDS
from harness.models.hardware import Precision
from harness.tasks.base import Message, TaskData


@dataclass(frozen=True)
class Budget:
    """How much data (and, for training approaches, compute) a run may use."""

    name: str
    train_examples: int | None
    validation_examples: int | None
    eval_examples: int | None
    description: str


BUDGETS: dict[str, Budget] = {
    b.name: b
    for b in (
        Budget("smoke", 32, 16, 40, "seconds; for tests and wiring checks, numbers are noise"),
        Budget("quick", 512, 100, 500, "minutes on a laptop CPU; the default"),
        Budget("full", None, None, None, "all the task's data; for GPU machines"),
    )
}


@dataclass
class RunContext:
    """Everything an approach may use to build its candidate."""

    task: TaskData
    """The task's splits, already cut to the budget. Train on ``train`` (and validate on
    ``validation``); never look at ``eval``."""
    load_base: Callable[..., tuple[Any, Any]]
    """Returns a fresh ``(model, tokenizer)`` of the base model on ``device``:
    ``trainable=True`` loads fp32 weights (master weights under mixed precision), else frozen
    weights stored in the compute dtype (``Precision.store_frozen``: run it under
    ``precision.autocast()``); other keyword arguments go to ``from_pretrained`` (e.g.
    ``quantization_config``)."""
    model_name: str
    model_version: str
    """Identifies the base weights (part of a trained candidate's cache key)."""
    budget: Budget
    seed: int
    device: torch.device
    run_dir: Path
    """A directory private to this run, for logs and a link to the candidate's artifacts."""
    precision: Precision = field(default_factory=lambda: Precision("fp32", torch.device("cpu")))
    """Numeric precision: train with ``precision.trainer_flags()`` (autocast, fp32 master
    weights); the harness sets it on the candidate after ``prepare``."""
    log_curve: Callable[[int, str, str, float], None] = lambda *point: None
    """Records one training-curve point ``(step, split, name, value)`` in the store."""
    retrain: bool = False
    """Ignore cached trained candidates and train again."""
    shared_base: Callable[[], tuple[Any, Any]] | None = None
    """The session's one frozen copy of the base model (see :meth:`frozen_base`)."""

    def frozen_base(self) -> tuple[Any, Any]:
        """``(model, tokenizer)`` for approaches that never change weights (prompting,
        retrieval): one copy per session, shared with the base model the suites compare
        against, so it is loaded once. Never train or modify it; ``load_base`` gives a
        private copy."""
        return (self.shared_base or self.load_base)()


class Candidate(ABC):
    """What the suites measure: something that answers prompts.

    Prompts are chat conversations (lists of messages ending with a user turn). A candidate
    may rewrite them (few-shot examples, retrieved passages) but must do so inside these calls
    so that every suite measures it the same way.
    """

    model: Any = None
    tokenizer: Any = None

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        """Facts about the candidate for the store: trainable params, artifact bytes..."""
        self.timings: dict[str, float] = {}
        """Running totals (seconds) of the phases of its calls the harness reports apart,
        e.g. ``retrieval_seconds``; the harness reads differences around each call."""

    @abstractmethod
    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 32, *,
        ignore_eos: bool = False,
    ) -> list[str]:
        """Greedy completions, one per prompt, without the prompt.

        ``ignore_eos=True`` asks for exactly ``max_new_tokens`` new tokens per prompt, never
        stopping at end-of-sequence (vLLM's ``SamplingParams(ignore_eos=True)``, llama-bench's
        fixed-length generation): the latency suite times decoding on a known number of
        tokens with it. The keyword is optional: a candidate whose ``generate`` does not
        declare it is timed on the tokens it chooses to produce
        (:func:`~harness.core.capabilities.decodes_fixed_length`); one that declares it must
        honour it, and a wrapper passes it on to the candidate it delegates to.
        """

    @abstractmethod
    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Log-likelihood of each choice as the reply to its prompt (summed over its tokens)."""

    precision: Precision | None = None
    """The numeric precision its model computes in (``None``: the weights' own dtype)."""

    def set_precision(self, precision: Precision) -> None:
        """Compute in ``precision`` from now on (the harness calls it after ``prepare``);
        candidates that wrap another candidate pass it on."""
        self.precision = precision

    def autocast(self) -> contextlib.AbstractContextManager:
        """A context in which its model computes in :attr:`precision`."""
        return self.precision.autocast() if self.precision else contextlib.nullcontext()

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """Summed log-probability of each raw text (no chat template) under the candidate's
        model and the number of tokens scored; the perplexity probe and lm-eval's
        ``loglikelihood_rolling`` use it.

        Prompt rewriting (few-shot examples, retrieval) does not apply: raw text has no
        question to rewrite. Candidates without a language model of their own keep this
        default, which raises :class:`NotImplementedError`.
        """
        raise NotImplementedError(f"{type(self).__name__} has no language model to score raw text")


@dataclass
class NoConfig:
    """This approach has no options."""


class Approach(ABC):
    """A way of adapting the base model to a task; subclasses are registered by plugins.

    Subclasses set ``name`` (unique, used on the command line), ``description``, ``kind``
    (one of :data:`KINDS`) and, if they have options, ``Config``: a dataclass whose fields all
    carry ``metadata={"help": ...}``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[str]
    """What kind of adaptation it is (:data:`KINDS`); recorded with every run."""
    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def prepare(self, ctx: RunContext) -> Candidate:
        """Build (configure or train) the candidate for ``ctx.task``."""

    builds_on_candidates: ClassVar[bool] = False
    """True if the approach can be applied on top of another approach's candidate
    (``lora+rag``); it then implements :meth:`build_on`."""

    control: ClassVar[bool] = False
    """True for a deliberately broken candidate that checks a measurement (a positive or
    negative control, ``plugins/controls.py``); left out of ``--approach=all``, run by name."""

    opt_in: ClassVar[bool] = False
    """True for an approach left out of ``--approach=all`` (and so of ``make bench``) because
    it is derived from others and costs more than the choice it informs (distillation: a
    teacher, then a student); asked for by name: ``--approach=all,distill``."""

    def build_on(self, ctx: RunContext, inner: Candidate) -> Candidate:
        """This approach applied on top of ``inner`` (the left part of a composition)."""
        raise NotImplementedError(f"{self.name} cannot build on another approach's candidate")

    def default_inner(self) -> str | None:
        """The approach (or composition) to prepare first when this one comes first or
        alone: ``distill`` names its teacher (``--set distill.teacher=rag``), so ``distill``
        runs as ``full-ft+distill``. ``None`` (the default): it prepares its own candidate."""
        return None

    def follow(self, inner: Sequence[Approach]) -> None:
        """Told, when a composition is built, which parts come before it (``full-ft`` in
        ``full-ft+distill``); raise ``ValueError`` if it cannot follow them."""
        return None

    def config_dict(self) -> dict[str, Any]:
        """The configuration as recorded in the store (and hashed for provenance)."""
        return dataclasses.asdict(self.config)

    def unsupported_reason(self, task: TaskData) -> str | None:
        """Why this approach cannot run on ``task`` (``None`` if it can); ``all`` skips it."""
        return None


def approach_declaration_problem(cls: object) -> str | None:
    """Why ``cls`` cannot be registered as an approach (``None`` if it can)."""
    if not (isinstance(cls, type) and issubclass(cls, Approach)):
        return f"expected a subclass of harness.Approach, got {cls!r}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip() or "+" in name:
        return (f"{cls.__qualname__}.name must be a non-empty string without '+' (it is used "
                f"on the command line and in compositions), got {name!r}")
    if not isinstance(getattr(cls, "description", None), str):
        return f"{cls.__qualname__} ({name}) has no description string"
    kind = getattr(cls, "kind", None)
    if kind not in KINDS:
        return (f"{cls.__qualname__} ({name}) must declare kind = one of "
                f"{', '.join(map(repr, KINDS))}; got {kind!r}")
    if not dataclasses.is_dataclass(cls.Config):
        return f"{cls.__qualname__}.Config ({name}) must be a dataclass"
    return None


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A documented config field: ``k: int = option(4, "number of examples")``."""
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help}, **kwargs)
