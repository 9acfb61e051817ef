"""Trainer callbacks shared by every trainer here: curves to the store, patience stopping.

Kept apart from :mod:`harness.train.sft` because importing transformers' trainer machinery
pulls in peft and bitsandbytes (seconds): the plugins import the training module when they
register, so it stays light and this one is imported when training starts.
"""

from __future__ import annotations

import math

from transformers import TrainerCallback

from harness.train.sft import CurveSink


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
