"""The base class of weight-updating approaches: attach trainable parts, train, cache, reload.

A subclass says how to make the base model trainable (``attach``), how to save only what
training produced (``save``: adapter weights for parameter-efficient methods, the whole model
for full fine-tuning) and how to rebuild the candidate from that (``restore``). Training
itself is shared (:func:`harness.train.sft.train_sft`), so every method is trained the same way.

A trained candidate is cached under ``$TUNEBENCH_CACHE/candidates/<approach>/<key>``, where
the key hashes the approach config, the task data, the base model, the code, the seed, the
budget, the device type and the precision; a later session with the same key reloads it
instead of training (``--retrain`` forces training).

Training writes the candidate into a staging folder ``<key>.partial-<host>-<pid>`` and renames
it into place only when every file and the manifest are written, so a crash or Ctrl-C never
leaves a half-written candidate where the cache looks; staging folders of dead processes are
removed by the next ``prepare``. The manifest holds the SHA-256 of every file, checked before a
reload: a changed, truncated or missing file (or a manifest from before checksums, which
cannot be checked) is reported in a warning and the run's info (``cache_miss``), and the
candidate is trained again rather than loaded half-way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import socket
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from harness.core.approach import Approach, Candidate, RunContext
from harness.models.lm_candidate import LMCandidate
from harness.models.loading import cache_dir
from harness.runner.provenance import source_hash, stable_hash
from harness.runner.store import pid_alive
from harness.train.sft import TrainingConfig, TrainingResult, quiet_library_noise, train_sft

MANIFEST = "candidate.json"


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit packed weights count as unpacked."""
    trainable = total = 0
    for parameter in model.parameters():
        count = parameter.numel()
        if type(parameter).__name__ == "Params4bit":
            count *= 2  # two 4-bit values per stored byte
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in ``folder`` but the manifest, by path relative to it."""
    sums = {}
    for file in sorted(f for f in folder.rglob("*") if f.is_file()):
        name = file.relative_to(folder).as_posix()
        if name != MANIFEST:
            digest = hashlib.sha256()
            with file.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
            sums[name] = digest.hexdigest()
    return sums


def cache_problem(folder: Path) -> str | None:
    """Why the cached candidate in ``folder`` must not be loaded (``None``: every file is as
    training wrote it)."""
    try:
        expected = json.loads((folder / MANIFEST).read_text()).get("sha256")
    except (OSError, ValueError, AttributeError) as error:
        return f"its manifest {MANIFEST} cannot be read ({error})"
    if not isinstance(expected, dict):
        return (f"its manifest {MANIFEST} has no checksums (written before tunebench recorded "
                "them), so its files cannot be verified")
    found = file_checksums(folder)
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            return f"{name} is missing"
        if name not in expected:
            return f"{name} was not written by training"
        if found[name] != expected[name]:
            return f"{name} does not match its SHA-256 in {MANIFEST} (changed or truncated)"
    return None


def remove_dead_staging(approach_folder: Path) -> list[Path]:
    """Remove staging (``*.partial-*``) and replaced (``*.old-*``) candidate folders left by
    processes of this host that are gone (killed while saving); returns what was removed."""
    removed = []
    host = socket.gethostname()
    for path in approach_folder.glob("*.*-*"):
        kind, _, owner = path.name.partition(".")[2].partition("-")  # keys have no dot
        writer, _, pid = owner.rpartition("-")
        if kind in {"partial", "old"} and writer in {host, ""} and pid.isdigit() and (
                not pid_alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class TrainedApproach(Approach):
    """An approach whose candidate is the base model plus trained weights."""

    Config: ClassVar[type] = TrainingConfig

    def unsupported_reason(self, task) -> str | None:
        return None if task.train else "the task has no training examples"

    def load_for_training(self, ctx: RunContext) -> tuple[Any, Any]:
        """The base model to train (override to load it differently, e.g. quantized)."""
        return ctx.load_base()

    @abstractmethod
    def attach(self, model: Any, ctx: RunContext) -> Any:
        """Make ``model`` trainable the way this method does; return the model to train."""

    @abstractmethod
    def save(self, model: Any, folder: Path) -> None:
        """Write what training produced (and only that) into ``folder``."""

    @abstractmethod
    def restore(self, ctx: RunContext, folder: Path) -> tuple[Any, Any]:
        """Rebuild ``(model, tokenizer)`` from the base model and ``folder``."""

    def finish_training(self, model: Any) -> None:
        """Called after training, before saving (override to undo training-only settings)."""

    def make_candidate(self, model: Any, tokenizer: Any) -> Candidate:
        return LMCandidate(model, tokenizer)

    def fit(self, model: Any, tokenizer: Any, ctx: RunContext) -> TrainingResult:
        """Train ``model`` in place (supervised fine-tuning unless overridden)."""
        return train_sft(
            model, tokenizer, ctx.task.train, ctx.task.validation, self.config,
            seed=ctx.seed, output_dir=ctx.run_dir / "trainer", precision=ctx.precision,
            curve_sink=ctx.log_curve,
        )

    def cache_inputs(self) -> Any:
        """Anything besides the config that determines the result (e.g. a config file's text)."""
        return None

    def inner_identity(self) -> list[Any]:
        """What identifies the candidate training starts from ([] for the base model)."""
        if self.inner is None:
            return []
        return [self.inner.info.get("cache_key", type(self.inner).__name__)]

    def cache_folder(self, ctx: RunContext) -> Path:
        module_file = inspect.getsourcefile(type(self)) or ""
        key = stable_hash([
            self.name, dataclasses.asdict(self.config), self.cache_inputs(),
            ctx.task.fingerprint(), ctx.model_version, source_hash(module_file), ctx.seed,
            ctx.budget.name, ctx.device.type, ctx.precision.name,
            *self.inner_identity(),
        ])
        return cache_dir() / "candidates" / self.name / key

    inner: Candidate | None = None
    """The candidate training continues from, when the approach is composed (``lora+dpo``)."""

    def prepare(self, ctx: RunContext) -> Candidate:
        folder = self.cache_folder(ctx)
        remove_dead_staging(folder.parent)
        cached = (folder / MANIFEST).is_file() and not ctx.retrain
        problem = cache_problem(folder) if cached else None
        if problem:
            warnings.warn(f"cached candidate {folder} is not used: {problem}; training it "
                          "again", stacklevel=2)
        if cached and problem is None:
            candidate = self._reload(ctx, folder)
        else:
            candidate = self._train(ctx, folder)
            if problem:
                candidate.info["cache_miss"] = problem
        link = ctx.run_dir / "candidate"
        if not link.exists():
            link.symlink_to(folder, target_is_directory=True)
        return candidate

    def _reload(self, ctx: RunContext, folder: Path) -> Candidate:
        manifest = json.loads((folder / MANIFEST).read_text())
        model, tokenizer = self.restore(ctx, folder)
        for point in manifest["curves"]:
            ctx.log_curve(*point)
        candidate = self.make_candidate(model, tokenizer)
        candidate.info.update(manifest["info"], cache_hit=True, artifact_dir=str(folder),
                              cache_key=folder.name)
        return candidate

    def _train(self, ctx: RunContext, folder: Path) -> Candidate:
        from transformers import set_seed

        quiet_library_noise()
        set_seed(ctx.seed)  # adapter initialisation draws from the global generators
        model, tokenizer = self.load_for_training(ctx)
        model = self.attach(model, ctx)
        trainable, total = count_parameters(model)
        if trainable == 0:
            raise RuntimeError(f"{self.name}: attach() left no trainable parameter")
        result = self.fit(model, tokenizer, ctx)
        self.finish_training(model)
        owner = f"{socket.gethostname()}-{os.getpid()}"
        staging = folder.with_name(f"{folder.name}.partial-{owner}")
        shutil.rmtree(staging, ignore_errors=True)
        self.save(model, staging)
        info = {
            "trainable_params": trainable,
            "total_params": total,
            "trainable_percent": round(100 * trainable / total, 4),
            "artifact_bytes": folder_bytes(staging),
            **result.info(),
        }
        (staging / MANIFEST).write_text(json.dumps(
            {"approach": self.name, "config": dataclasses.asdict(self.config), "info": info,
             "curves": result.curves, "sha256": file_checksums(staging)}, indent=1,
            default=str,
        ))
        replaced = folder.with_name(f"{folder.name}.old-{owner}")
        if folder.exists():  # a --retrain or a failed check: move the old one aside at once
            shutil.rmtree(replaced, ignore_errors=True)
            folder.rename(replaced)
        try:
            staging.rename(folder)
        except OSError:  # another process put the same candidate there meanwhile: keep it
            if not (folder / MANIFEST).is_file():
                raise
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(replaced, ignore_errors=True)
        candidate = self.make_candidate(model, tokenizer)
        candidate.info.update(info, cache_hit=False, artifact_dir=str(folder),
                              cache_key=folder.name)
        return candidate
