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
def on_run_started(run_id, record):
    """Observe a run as it opens, before its candidate is prepared: ``record`` is its
    :class:`harness.runner.store.RunRecord` (approach, task, model, seed, budget, config,
    data and code hashes). Curve points and metrics of ``run_id`` follow, then
    ``on_run_finished``."""


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


@hookspec
def on_runs_imported(store, run_ids):
    """Observe runs written whole into ``store`` (a :class:`harness.runner.store.Store`) by this
    process, whose other hooks fired elsewhere or never: the cells of a distributed executor
    (``--executor=ray``) as the driver imports them, or the failure record of a cell whose task
    sent back no run. Read them with ``store.query``."""
