"""Students for knowledge distillation: the base model, a copy cut to fewer layers, or a folder.

A cut student keeps ``n`` of the base model's decoder layers, evenly spaced with the first
and the last always kept: DistilBERT's initialisation from every other teacher layer (Sanh
et al., 2019), generalised to any ``n``. It is a real, smaller model: its config says ``n``
layers, so ``save_pretrained`` writes a checkpoint that loads on its own.

Teacher and student must share a tokenizer: logit distillation compares their distributions
token by token, and the suites compare their answers to the same prompts.
"""

from __future__ import annotations

from typing import Any


def decoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of a causal LM's decoder layers (Llama, Mistral, Qwen, Gemma...
    keep it at ``model.model.layers``)."""
    body = getattr(getattr(model, "get_base_model", lambda: model)(), "model", None)
    layers = getattr(body, "layers", None)
    if layers is None:
        raise ValueError(f"cannot cut {type(model).__name__} to fewer layers: its decoder "
                         "layers are not at model.model.layers (Llama-style models only)")
    return layers


def evenly_spaced(total: int, keep: int) -> list[int]:
    """``keep`` of ``range(total)``, evenly spaced, first and last included."""
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} layers: choose 1 to {total}")
    if keep == 1:
        return [0]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def keep_layers(model: Any, keep: int) -> list[int]:
    """Cut ``model`` in place to ``keep`` evenly spaced decoder layers; returns their indices
    in the original model. The config and each attention's cache slot follow the cut."""
    from torch import nn

    layers = decoder_layers(model)
    kept = evenly_spaced(len(layers), keep)
    model.model.layers = nn.ModuleList(layers[i] for i in kept)
    for position, layer in enumerate(model.model.layers):
        attention = getattr(layer, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = position  # the key/value cache is indexed by it
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = position
    config = model.config
    config.num_hidden_layers = len(kept)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in kept]
    return kept


def tokenizer_mismatch(teacher: Any, student: Any) -> str | None:
    """Why two tokenizers cannot be used as teacher and student (``None`` if they match):
    the same vocabulary (token -> id), special tokens and chat template."""
    teacher_vocab, student_vocab = teacher.get_vocab(), student.get_vocab()
    if teacher_vocab != student_vocab:
        differ = len(set(teacher_vocab.items()) ^ set(student_vocab.items()))
        return (f"the vocabularies differ ({len(teacher_vocab):,} vs {len(student_vocab):,} "
                f"tokens; {differ:,} token/id pairs not in both)")
    for name in ("eos_token", "bos_token", "pad_token"):
        if getattr(teacher, name, None) != getattr(student, name, None):
            return (f"the {name}s differ ({getattr(teacher, name, None)!r} vs "
                    f"{getattr(student, name, None)!r})")
    if getattr(teacher, "chat_template", None) != getattr(student, "chat_template", None):
        return "the chat templates differ"
    return None


def parameter_count(model: Any) -> int:
    """The parameters of ``model``'s architecture: tied weights once, even when serving
    stored the output layer apart in another dtype (``Precision.store_frozen``)."""
    total = sum(p.numel() for p in model.parameters())
    tied = getattr(getattr(model, "config", None), "tie_word_embeddings", False)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if tied and output is not None and output.weight is not model.get_input_embeddings().weight:
        total -= output.weight.numel()
    return total
