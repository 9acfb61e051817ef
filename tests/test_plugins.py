"""The plugin core: registries, runtime registration, hook documentation and hook calls."""

import inspect
import re
from pathlib import Path

import pytest

from harness.core import hookspecs, plugins
from harness.core.approach import Approach, RunContext, approach_declaration_problem
from harness.core.hookspecs import hookimpl
from harness.core.registry import (
    DeclarationError,
    DuplicateNameError,
    Registry,
    UnknownNameError,
)
from harness.measure.catalogue import Metric
from harness.models.lm_candidate import LMCandidate
from harness.runner.session import ExperimentSession, Recorder, SessionOptions

ROOT = Path(__file__).resolve().parent.parent
HOOK_NAMES = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)]


def test_builtin_plugins_register_prompting_and_sentiment():
    assert {"zero-shot", "few-shot"} <= set(plugins.approaches().names())
    assert "sentiment" in plugins.tasks()


def test_unknown_name_suggests_close_matches_and_lists_all():
    with pytest.raises(UnknownNameError) as error:
        plugins.approaches().get("zero-shoot")
    message = str(error.value)
    assert "Did you mean 'zero-shot'" in message
    assert "few-shot" in message and "zero-shot" in message


def test_duplicate_names_are_refused():
    registry: Registry = Registry("approach")
    registry.register("a", int)
    with pytest.raises(DuplicateNameError, match="'a'"):
        registry.register("a", str)


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_has_a_docstring_and_is_documented(name):
    assert inspect.getdoc(getattr(hookspecs, name)), f"hook {name} has no docstring"
    documentation = (ROOT / "docs" / "hooks.md").read_text()
    assert re.search(rf"`{name}\(", documentation), f"hook {name} is missing from docs/hooks.md"


class Echo(Approach):
    name = "echo-test"
    kind = "prompting"
    description = "registered at run time by a test"

    def prepare(self, ctx: RunContext) -> LMCandidate:
        model, tokenizer = ctx.load_base()
        candidate = LMCandidate(model, tokenizer)
        candidate.info["built_by"] = "echo-test"
        ctx.log_curve(1, "train", "loss", 2.5)
        return candidate


class Observer:
    """A plugin that registers an approach and records every lifecycle hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def register_approaches(self, register):
        register(Echo)

    @hookimpl
    def register_tasks(self, register):
        self.calls.append(("register_tasks", {}))

    @hookimpl
    def register_metrics(self, register):
        self.calls.append(("register_metrics", {}))
        register(Metric("answered", True, "share", "share of prompts answered (a test metric)"))

    @hookimpl
    def on_candidate_ready(self, candidate, run):
        self.calls.append(("on_candidate_ready", {"candidate": candidate, "run": run}))

    @hookimpl
    def on_train_log(self, run_id, step, split, name, value):
        self.calls.append(("on_train_log", {"step": step, "split": split, "value": value}))

    @hookimpl
    def on_metric_recorded(self, run, metric):
        self.calls.append(("on_metric_recorded", {"run": run, "metric": metric}))

    @hookimpl
    def on_run_started(self, run_id, record):
        self.calls.append(("on_run_started", {"run_id": run_id, "approach": record.approach}))

    @hookimpl
    def on_run_finished(self, run_id, status):
        self.calls.append(("on_run_finished", {"run_id": run_id, "status": status}))


@pytest.fixture
def observer():
    plugin = Observer()
    plugins.pm.register(plugin, name="observer")
    yield plugin
    plugins.pm.unregister(plugin)


def test_runtime_registered_approach_is_selectable_and_every_hook_fires(
    observer, tiny_model_dir, tmp_path
):
    assert "echo-test" in plugins.approaches()
    session = ExperimentSession(SessionOptions(
        approaches=["echo-test"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", session="hooks",
    ))
    assert session.approach_names() == ["echo-test"]
    with session.open_run("echo-test") as run:
        assert run.candidate.info["built_by"] == "echo-test"
        Recorder(session, run, "unit").metric("answered", 1.0)
    session.close()
    called = {name for name, _ in observer.calls}
    # register_approaches is exercised by the lookup above; the rest must have been called.
    assert called == {"register_tasks", "register_metrics", "on_run_started",
                      "on_candidate_ready", "on_metric_recorded", "on_run_finished",
                      "on_train_log"}
    started = [kwargs for name, kwargs in observer.calls if name == "on_run_started"]
    assert started == [{"run_id": run.id, "approach": "echo-test"}]
    assert ("on_train_log", {"step": 1, "split": "train", "value": 2.5}) in observer.calls
    finished = [kwargs for name, kwargs in observer.calls if name == "on_run_finished"]
    assert finished == [{"run_id": run.id, "status": "finished"}]
    metrics = [kw["metric"] for name, kw in observer.calls if name == "on_metric_recorded"]
    assert {"suite": "unit", "name": "answered", "value": 1.0,
            "higher_is_better": True}.items() <= metrics[-1].items()
    assert "prepare_seconds" in {m["name"] for m in metrics}  # cost, recorded by the harness
    # on_runs_imported fires only in a Ray driver (tests/test_mlflow_tracking.py runs one).
    assert set(HOOK_NAMES) == called | {"register_approaches", "on_runs_imported"}


def test_compositions_take_the_costliest_kind(tiny_model_dir, tmp_path):
    session = ExperimentSession(SessionOptions(
        approaches=["lora+rag"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db"))
    assert session.make_approach("lora+rag").kind == "parameter-efficient"
    assert session.make_approach("few-shot+rag").kind == "retrieval"
    assert session.make_approach("full-ft+dpo").kind == "full fine-tuning"
    assert not (tmp_path / "r.db").exists()


def test_register_checks_the_class_it_is_given():
    registry = Registry("approach", check=approach_declaration_problem)

    class NoKind(Approach):
        name = "no-kind"
        description = "forgot its kind"

        def prepare(self, ctx):
            raise NotImplementedError

    for bad, message in ((int, "subclass of harness.Approach"), (NoKind, "must declare kind"),
                         (type("Plus", (NoKind,), {"name": "a+b", "kind": "prompting"}),
                          "without '+'")):
        with pytest.raises(DeclarationError, match=re.escape(message)):
            registry.add(bad)
    registry.add(Echo)
    assert registry.get("echo-test") is Echo
    with pytest.raises(DeclarationError, match=r"subclass of harness\.Task"):
        Registry("task", check=plugins.task_declaration_problem).add(Echo)


def test_every_run_records_its_approachs_kind(observer, tiny_model_dir, tmp_path):
    session = ExperimentSession(SessionOptions(
        approaches=["echo-test"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", session="kinds"))
    with session.open_run("echo-test") as run:
        pass
    [row] = session.store.query("SELECT kind FROM runs WHERE id = ?", (run.id,))
    session.close()
    assert row["kind"] == Echo.kind == "prompting"


def test_unregistered_approach_disappears(observer):
    plugins.pm.unregister(observer)
    assert "echo-test" not in plugins.approaches()
    plugins.pm.register(observer, name="observer")


def make_installed_plugin(site: Path) -> None:
    """An installed distribution 'tb-demo' with a tunebench entry point, written by hand."""
    (site / "tb_demo.py").write_text(
        "from harness.core.approach import Approach\n"
        "from harness.core.hookspecs import hookimpl\n"
        "class Demo(Approach):\n"
        "    name = 'demo-entry-point'\n"
        "    kind = 'prompting'\n"
        "    description = 'from an entry point'\n"
        "    def prepare(self, ctx):\n"
        "        raise NotImplementedError\n"
        "@hookimpl\n"
        "def register_approaches(register):\n"
        "    register(Demo)\n"
    )
    info = site / "tb_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tb-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tunebench]\ndemo = tb_demo\n")


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize(
    ("allow", "expected"), [(None, True), ("tb-demo", True), ("", False), ("other", False)]
)
def test_entry_point_plugins_load_subject_to_the_allow_list(tmp_path, allow, expected):
    import os
    import subprocess
    import sys

    make_installed_plugin(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TUNEBENCH_LOAD_PLUGINS"}
    if allow is not None:
        env["TUNEBENCH_LOAD_PLUGINS"] = allow
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-c", "from harness.core.plugins import approaches; "
         "print('demo-entry-point' in approaches())"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == str(expected)
