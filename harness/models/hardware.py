"""Device and numeric precision: what runs where, in which dtype, and how big a batch fits.

``--device auto`` picks CUDA when present, else the CPU. ``--precision auto`` follows the
hardware (mixed precision as in Micikevicius et al., 2018, "Mixed Precision Training", with
bfloat16 as in Kalamkar et al., 2019, "A Study of BFLOAT16 for Deep Learning Training"):

- bf16 on CUDA devices that support it (Ampere and later) and on CPUs with native bf16
  matrix instructions (AVX512-BF16 or AMX), where a bf16 matmul runs several times faster
  than fp32; fp16 on older CUDA devices; fp32 elsewhere.
- Mixed means: weights that are trained stay fp32 (master weights and optimizer state, as
  ``TrainingArguments(bf16=True)`` keeps them) and matmuls run under ``torch.autocast``.
  Frozen weights (a PEFT base, a model only scored, a candidate once trained) are stored in
  the compute dtype, so autocast does not cast them again at every forward pass (for a
  one-token decode step that cast costs more than the matmul, and it is a fifth of a LoRA
  training step on the CPU): on CUDA the whole frozen model is loaded in it (memory is what
  limits a GPU); on the CPU only its linear layers (:func:`store_linear_weights`), which
  gives exactly the results of autocast over fp32 weights.

Everything here is plain logic over what torch reports, so it is unit-tested on a CPU.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""``/proc/cpuinfo`` flags of CPUs whose matrix units compute in bf16 natively."""


class HardwareError(ValueError):
    """A ``--device`` or ``--precision`` the machine cannot honour; the message says why."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:1`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HardwareError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N"
                            ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HardwareError(f"--device {name}: no CUDA device is available; use cpu or auto")
    return device


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no ``/proc/cpuinfo``)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX)."""
    flags = cpu_flags() if flags is None else flags
    if any(flag in flags for flag in CPU_BF16_FLAGS):
        return True
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private, may go away
    return bool(probe and probe())


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 at full speed."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


@dataclass(frozen=True)
class Precision:
    """The numeric precision of a session on its device."""

    name: str
    """``fp32``, ``bf16`` or ``fp16``: the dtype matrix multiplications run in."""
    device: torch.device

    @property
    def compute_dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def mixed(self) -> bool:
        return self.name != "fp32"

    def weights_dtype(self, trainable: bool = False) -> torch.dtype:
        """The dtype to load weights in: fp32 for trained weights (master copy) and on the
        CPU (whose frozen linear layers are then cast by :func:`store_linear_weights`); the
        compute dtype for frozen weights on CUDA."""
        if trainable or not self.mixed or self.device.type != "cuda":
            return torch.float32
        return self.compute_dtype

    def store_frozen(self, model: torch.nn.Module) -> None:
        """Store the linear weights of ``model``, which is not (or no longer) trained, in the
        compute dtype (:func:`store_linear_weights`; a no-op at fp32)."""
        if self.mixed:
            store_linear_weights(model, self.compute_dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Matmuls in the compute dtype (a no-op at fp32)."""
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    def trainer_flags(self) -> dict[str, bool]:
        """``TrainingArguments`` mixed-precision switches (autocast, fp32 master weights)."""
        return {"bf16": self.name == "bf16", "fp16": self.name == "fp16"}


def store_linear_weights(model: torch.nn.Module, dtype: torch.dtype) -> int:
    """Store the fp32 weights and biases of ``model``'s ``nn.Linear`` layers in ``dtype``;
    returns how many layers changed.

    Under autocast a linear layer casts its fp32 weight to the compute dtype at every call,
    so storing it there once gives the same results, faster. Everything else keeps its dtype
    (embeddings, norms, IA3 vectors, prompt encoders: autocast keeps those ops in fp32), and
    so do quantized weights (bitsandbytes' ``Params4bit``), whose layers are made to hand
    their products over in ``dtype`` under autocast, as a linear layer does
    (:mod:`harness.models.quantized`). An output layer tied to the input
    embeddings gets its own copy first, so the embeddings stay fp32. The output layer keeps
    its fp32 weights as ``scoring_weight`` too (the embeddings' own when tied, else a copy),
    for the scoring that applies it in fp32 (:func:`harness.models.scoring.output_logits`).
    Only for models that are no longer trained: an optimizer holding these weights would step
    in ``dtype``.
    """
    if dtype == torch.float32:
        return 0
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    changed = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if type(weight).__name__ == "Params4bit":  # bitsandbytes is installed then
            from harness.models.quantized import compute_as_autocast

            changed += compute_as_autocast(module)
            continue
        if (not isinstance(module, torch.nn.Linear) or type(weight) is not torch.nn.Parameter
                or weight.dtype != torch.float32):
            continue
        if module is output and not _rounded_copy(weight, getattr(module, "scoring_weight", None),
                                                  dtype):
            module.scoring_weight = weight.detach()
        if id(weight) in embeddings:  # tied to the embeddings: untie, keep them fp32
            module.weight = torch.nn.Parameter(weight.detach().to(dtype), requires_grad=False)
        else:
            module.to(dtype)
        if type(module) is torch.nn.Linear:
            module.__class__ = OneRowLinear
        changed += 1
    return changed


def _rounded_copy(weight: torch.Tensor, kept: torch.Tensor | None, dtype: torch.dtype) -> bool:
    """Whether ``weight`` is ``kept`` rounded to ``dtype`` and back: an output layer stored
    before and cast up since (QLoRA's ``prepare_model_for_kbit_training`` does), whose fp32
    weights are still ``kept``; anything else (trained since) replaces them."""
    return (kept is not None and kept.shape == weight.shape
            and torch.equal(kept.to(dtype).to(weight.dtype), weight))


class OneRowLinear(torch.nn.Linear):
    """``nn.Linear`` that multiplies a single row as a 2-D matrix.

    Under CPU autocast, a bf16 weight and a one-row 3-D input whose size-1 dimensions carry
    large strides (the last position sliced out of a sequence, as ``logits_to_keep`` does
    before the output layer) take a batched-matmul path that copies the whole weight at every
    call: 120 ms for this model's 49k x 576 output layer at batch size 1, against 5 ms for the
    same product as a matrix (benchmarks/README.md, batch-1 latency).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2 and x.numel() == x.shape[-1]:
            out = torch.nn.functional.linear(x.reshape(1, -1), self.weight, self.bias)
            return out.view(*x.shape[:-1], out.shape[-1])
        return super().forward(x)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """``auto``: bf16 where the device runs it natively, fp16 on older CUDA devices, else fp32.

    Forcing bf16 on a CPU without native bf16 works (emulated, slower) and warns; fp16 is
    refused on the CPU, whose fp16 matmuls are emulated and lose range.
    """
    if name not in PRECISIONS:
        raise HardwareError(f"--precision {name}: use one of {', '.join(PRECISIONS)}")
    if name == "auto":
        if native_bf16(device):
            return Precision("bf16", device)
        return Precision("fp16" if device.type == "cuda" else "fp32", device)
    if name == "fp16" and device.type != "cuda":
        raise HardwareError("--precision fp16 needs a CUDA device; on a CPU use bf16 or fp32")
    if name == "bf16" and not native_bf16(device):
        warnings.warn(f"--precision bf16: {device} has no native bf16 support; it runs "
                      "emulated and slower than fp32 (use --precision auto)", stacklevel=2)
    return Precision(name, device)


DEFAULT_BATCH_TOKENS = 4096
"""Attended tokens per scoring batch on the CPU (and the floor on a GPU)."""
MAX_GPU_BATCH_TOKENS = 65536


def scoring_batch_tokens(
    device: torch.device, *, free_bytes: int | None = None, bytes_per_token: int = 0,
    configured: int | None = None,
) -> int:
    """Tokens per scoring forward pass: ``configured`` (``TUNEBENCH_MAX_BATCH_TOKENS``) when
    set; on CUDA, half the free memory divided by ``bytes_per_token`` (activations and
    key/value cache of one token), between ``DEFAULT_BATCH_TOKENS`` and
    ``MAX_GPU_BATCH_TOKENS``; on the CPU, ``DEFAULT_BATCH_TOKENS`` (larger batches do not
    run faster there: the matmuls are already compute-bound)."""
    if configured:
        return configured
    if device.type != "cuda" or bytes_per_token <= 0:
        return DEFAULT_BATCH_TOKENS
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    fitting = free_bytes // 2 // bytes_per_token
    return int(min(max(fitting, DEFAULT_BATCH_TOKENS), MAX_GPU_BATCH_TOKENS))


def bytes_per_token(config: object, dtype: torch.dtype) -> int:
    """A rough upper bound on the memory one scored token takes in a forward pass without
    gradients: its key/value cache in every layer plus a few hidden-size activations and the
    MLP's intermediate activation (the logits are cut by ``logits_to_keep``)."""
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    intermediate = int(getattr(config, "intermediate_size", 4 * hidden) or 4 * hidden)
    heads = int(getattr(config, "num_attention_heads", 1) or 1)
    kv_heads = int(getattr(config, "num_key_value_heads", heads) or heads)
    kv = 2 * layers * hidden * kv_heads // heads
    size = torch.finfo(dtype).bits // 8
    return (kv + 4 * hidden + 2 * intermediate) * size

