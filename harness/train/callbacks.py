"""Trainer callbacks shared by every trainer here: curves to the store, patience stopping,
one progress bar.

Kept apart from :mod:`harness.train.sft` because importing transformers' trainer machinery
pulls in peft and bitsandbytes (seconds): the plugins import the training module when they
register, so it stays light and this one is imported when training starts.
"""

from __future__ import annotations

import logging
import math
from typing import IO, Any

from tqdm.auto import tqdm
from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from harness.train.sft import CurveSink

PROGRESS_LOG = logging.getLogger("harness.train.progress")
"""Training progress as log records, for the runner's phase lines: ``record.training`` is
``{"event": "begin" | "log" | "end", "step", "steps", "trainer", "loss"}``."""


class CurveLogger(TrainerCallback):
    """Sends training and validation curves to the store as the trainer logs them.

    ``names`` maps a trainer log key (training; ``eval_<key>`` for validation) to the curve
    name stored: by default the loss; preference trainers add reward margins, KL...
    """

    def __init__(self, sink: CurveSink, names: dict[str, str] | None = None) -> None:
        self.sink = sink
        self.names = names or {"loss": "loss"}
        self.points: list[tuple[int, str, str, float]] = []
        self.eval_seconds = 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        self.eval_seconds += float(logs.get("eval_runtime", 0.0))
        for key, name in self.names.items():
            for logged, split in ((key, "train"), (f"eval_{key}", "validation")):
                value = logs.get(logged)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    point = (state.global_step, split, name, float(value))
                    self.points.append(point)
                    self.sink(*point)


class PatienceStopping(TrainerCallback):
    """Stops training once validation loss has not improved for ``patience`` evaluations."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.waited = patience, math.inf, 0
        self.stopped_at: int | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if self.patience <= 0 or loss is None:
            return
        if loss < self.best:
            self.best, self.waited = loss, 0
        else:
            self.waited += 1
            if self.waited >= self.patience:
                control.should_training_stop = True
                self.stopped_at = state.global_step


class TrainingProgress(TrainerCallback):
    """One training bar with the latest loss as its postfix, instead of transformers'
    ``ProgressCallback`` / ``PrinterCallback``, which print every log dictionary as a line
    (the values still reach :class:`CurveLogger`). Like tqdm's ``disable=None``, no bar is
    drawn unless ``file`` (stderr by default) is a terminal. Begin, log and end events also
    go to :data:`PROGRESS_LOG`."""

    def __init__(self, trainer: str, *, file: IO[str] | None = None,
                 disable: bool | None = None) -> None:
        self.trainer, self.file, self.disable = trainer, file, disable
        self.bar: Any = None
        self.eval_bar: Any = None
        self.step = 0
        self.postfix: dict[str, str] = {}

    def _event(self, event: str, state: Any, **fields: Any) -> None:
        PROGRESS_LOG.info("%s: %s at step %d of %d", self.trainer, event, state.global_step,
                          state.max_steps, extra={"training": {
                              "event": event, "step": state.global_step,
                              "steps": state.max_steps, "trainer": self.trainer, **fields}})

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, desc="training", unit="step",
                            dynamic_ncols=True, file=self.file, disable=self.disable)
            self.step = state.global_step
            self._event("begin", state)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.step)
            self.step = state.global_step

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not state.is_world_process_zero or eval_dataloader is None:
            return
        if self.eval_bar is None:
            self.eval_bar = tqdm(total=len(eval_dataloader), desc="validation", unit="batch",
                                 leave=False, dynamic_ncols=True, file=self.file,
                                 disable=self.disable)
        self.eval_bar.update(1)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.eval_bar is not None:
            self.eval_bar.close()
            self.eval_bar = None

    on_predict = on_evaluate

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        for key, shown in (("loss", "loss"), ("eval_loss", "val_loss")):
            value = logs.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.postfix[shown] = f"{value:.4g}"
        if self.bar is not None and state.is_world_process_zero:
            if self.postfix:
                self.bar.set_postfix(self.postfix, refresh=True)
            loss = logs.get("loss")
            self._event("log", state, loss=loss if isinstance(loss, (int, float)) else None)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self._event("end", state)


def trainer_name(trainer: Any) -> str:
    """The library trainer ``trainer`` is built on (``SFTTrainer``, ``DPOTrainer``...)."""
    library = next((cls for cls in type(trainer).__mro__
                    if cls.__module__.split(".")[0] in {"trl", "transformers"}), type(trainer))
    return library.__name__


def show_training_progress(trainer: Any, progress: TrainingProgress | None = None) -> None:
    """Replace the trainer's default progress callback (a bar that also prints each log
    dictionary, or a printer of them) by ``progress`` (default: a :class:`TrainingProgress`
    on stderr); a ``TrainingProgress`` the trainer already has is kept."""
    from transformers.trainer import DEFAULT_PROGRESS_CALLBACK

    for default in {ProgressCallback, PrinterCallback, DEFAULT_PROGRESS_CALLBACK}:
        trainer.remove_callback(default)
    installed = [c for c in trainer.callback_handler.callbacks if isinstance(c, TrainingProgress)]
    if progress is not None:
        for callback in installed:
            trainer.remove_callback(callback)
        trainer.add_callback(progress)
    elif not installed:
        trainer.add_callback(TrainingProgress(trainer_name(trainer)))
