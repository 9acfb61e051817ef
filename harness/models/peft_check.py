"""Checking a PEFT config against the base model before anything is trained.

PEFT (Mangrulkar et al., 2022, huggingface/peft) takes a prompt-learning config's
``token_dim``, ``num_layers`` and ``num_attention_heads`` from the model only when they are
unset (``peft.utils.other._prepare_prompt_learning_config``): values written for another model
pass through and fail deep in the forward pass ("Sizes of tensors must match"). It matches
``target_modules`` by name suffix, or a string as a regular expression
(``peft.tuners.tuners_utils.check_target_module_exists``), and refuses a list only when no
entry matches: a misspelt entry silently adapts fewer modules. ``modules_to_save`` entries
that match nothing are ignored (``peft.utils.other._set_trainable``). :func:`check_peft_config`
reports all of these, naming the field and the fix, while there is still nothing to undo.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

PROMPT_SIZES = (
    ("token_dim", ("hidden_size", "n_embd", "d_model"), "the model's hidden size is {}"),
    ("num_layers", ("num_hidden_layers", "num_layers", "n_layer"), "the model has {} layers"),
    ("num_attention_heads", ("num_attention_heads", "n_head", "num_heads"),
     "the model has {} attention heads"),
)
"""Prompt-learning fields PEFT fills from the model config: (field, the model config's names
for it, how the model's value reads)."""
KV_PREFIX_TYPES = ("PREFIX_TUNING", "CARTRIDGE")
"""Methods whose prefixes PEFT sizes to the key/value heads on a grouped-query-attention
model, so a saved config of theirs holds ``token_dim = head_dim * num_key_value_heads`` and
``num_attention_heads = num_key_value_heads``."""
SHOWN_NAMES = 8
"""Module names listed in an error, to show what exists."""


class PeftConfigMismatch(ValueError):
    """A PEFT config that does not fit the base model; the message names the field and fix."""


def _model_value(config: Any, names: Iterable[str]) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else sorted(value or ())


def leaf_names(model: Any) -> list[str]:
    """The last components of the model's leaf module names, in model order, without the
    numbered ones (``q_proj``, ``down_proj``, ``embed_tokens``...): what a config names."""
    seen: dict[str, None] = {}
    for name, module in model.named_modules():
        last = name.rpartition(".")[2]
        if name and not last.isdigit() and next(module.children(), None) is None:
            seen.setdefault(last, None)
    return list(seen)


def _unmatched(field: str, wanted: list[str], matches: Any, model: Any) -> str | None:
    missing = [name for name in wanted if not matches(name)]
    if not missing:
        return None
    existing = leaf_names(model)
    close = {m: difflib.get_close_matches(m, existing, n=1) for m in missing}
    hints = [f"{m!r} (did you mean {c[0]!r}?)" if c else repr(m) for m, c in close.items()]
    verb = "match" if len(missing) > 1 else "matches"
    return (f"field '{field}' names {', '.join(hints)}, which {verb} no module of the model; "
            f"modules it has include {', '.join(existing[:SHOWN_NAMES])}")


def _prompt_sizes(fields: Mapping[str, Any], text_config: Any) -> dict[str, set[int]]:
    """The values each prompt-learning field may have for this model."""
    allowed = {field: {value} for field, names, _ in PROMPT_SIZES
               if (value := _model_value(text_config, names)) is not None}
    kv_heads = _model_value(text_config, ("num_key_value_heads",))
    heads = _model_value(text_config, PROMPT_SIZES[2][1])
    hidden = _model_value(text_config, PROMPT_SIZES[0][1])
    if str(fields.get("peft_type", "")).upper() in KV_PREFIX_TYPES and kv_heads and heads:
        head_dim = _model_value(text_config, ("head_dim",)) or (hidden or 0) // heads
        allowed["token_dim"] = allowed.get("token_dim", set()) | {head_dim * kv_heads}
        allowed["num_attention_heads"] = allowed.get("num_attention_heads", set()) | {kv_heads}
    return allowed


def _prompt_size_problem(fields: Mapping[str, Any], text_config: Any) -> str | None:
    allowed = _prompt_sizes(fields, text_config)
    wrong, given = [], []
    for field, names, reads in PROMPT_SIZES:
        value = fields.get(field)
        if value is None:
            continue
        given.append(field)
        if field in allowed and value not in allowed[field]:
            actual = _model_value(text_config, names)
            wrong.append(f"field '{field}' is {value} but {reads.format(actual)}")
    if not wrong:
        return None
    listed = " and ".join([", ".join(given[:-1]), given[-1]] if len(given) > 1 else given)
    them = "them" if len(given) > 1 else "it"
    return f"{'; '.join(wrong)}; remove {listed} to take {them} from the model"


def _submodules_problem(fields: Mapping[str, Any], config: Any) -> str | None:
    submodules = fields.get("num_transformer_submodules")
    expected = 2 if getattr(config, "is_encoder_decoder", False) else 1
    if submodules is None or submodules == expected:
        return None
    kind = "an encoder-decoder" if expected == 2 else "a decoder-only"
    return (f"field 'num_transformer_submodules' is {submodules} but {kind} model has "
            f"{expected}; remove it to take it from the model")


def _module_problems(fields: Mapping[str, Any], model: Any) -> list[str | None]:
    names = [name for name, _ in model.named_modules() if name]
    targets = fields.get("target_modules")
    problems = []
    if isinstance(targets, str) and targets != "all-linear":  # a regular expression
        try:
            found = any(re.fullmatch(targets, name) for name in names)
        except re.error as error:
            return [f"field 'target_modules' is {targets!r}, not a valid regular expression "
                    f"({error}); give a list of module names or a pattern"]
        problems.append(None if found else
                        _unmatched("target_modules", [targets], lambda _: False, model))
    elif targets and not isinstance(targets, str):
        problems.append(_unmatched("target_modules", _names(targets), lambda target: any(
            name == target or name.endswith(f".{target}") for name in names), model))
    problems.append(_unmatched("modules_to_save", _names(fields.get("modules_to_save")),
                               lambda kept: any(name.endswith(kept) for name in names), model))
    return problems


def _layers_problem(fields: Mapping[str, Any], text_config: Any) -> str | None:
    layers = fields.get("layers_to_transform")
    count = _model_value(text_config, PROMPT_SIZES[1][1])
    if layers is None or count is None:
        return None
    outside = [i for i in ([layers] if isinstance(layers, int) else layers)
               if not 0 <= i < count]
    if not outside:
        return None
    return (f"field 'layers_to_transform' has {outside}, but the model has {count} layers "
            f"(indices 0 to {count - 1})")


def config_problems(fields: Mapping[str, Any], model: Any) -> list[str]:
    """What in the PEFT config ``fields`` (a parsed ``adapter_config.json``) does not fit
    ``model``, one sentence per field; empty if it fits. ``None`` values count as unset."""
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    problems = [
        _prompt_size_problem(fields, text_config),
        _submodules_problem(fields, config),
        *_module_problems(fields, model),
        _layers_problem(fields, text_config),
    ]
    return [problem for problem in problems if problem]


def check_peft_config(fields: Mapping[str, Any], source: str, model: Any) -> None:
    """Raise :class:`PeftConfigMismatch` (``source: field ...``) if ``fields`` does not fit
    ``model``. A config naming another base model (``base_model_name_or_path``) is not refused
    for that: PEFT warns about it (``peft.mapping_func.get_peft_model``), and sizes and module
    names are what decide whether it fits."""
    problems = config_problems(fields, model)
    if problems:
        raise PeftConfigMismatch(f"{source}: {'; '.join(problems)}")
