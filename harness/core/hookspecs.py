"""Hook specifications: what a tunebench plugin can provide or observe (after simonw/llm)."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("tunebench")
hookimpl = HookimplMarker("tunebench")


@hookspec
def register_approaches(register):
    """Register approaches: call ``register(ApproachSubclass)`` once for each."""


@hookspec
def register_tasks(register):
    """Register tasks: call ``register(TaskSubclass)`` once for each."""


@hookspec
def register_metrics(register):
    """Describe metrics: call ``register(harness.Metric(...))`` for each metric your suites or
    candidates record (direction, unit, headline rank); recording an undescribed one fails."""


@hookspec
def on_candidate_ready(candidate, run):
    """Observe a candidate once its approach has prepared it, before any suite measures it."""


@hookspec
def on_train_log(run_id, step, split, name, value):
    """Observe one training-curve point (e.g. ``split="validation", name="loss"``) as logged."""


@hookspec
def on_metric_recorded(run, metric):
    """Observe each metric as it is stored (e.g. to mirror results into another tracker)."""


@hookspec
def on_run_finished(run_id, status):
    """Observe the end of a run; ``status`` is "finished", "failed" or "interrupted"."""
