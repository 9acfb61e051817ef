"""One experiment session: resolved options, the task, the base model, the store, open runs.

The pytest plugin is a thin layer over this class, so the same logic is usable (and tested)
without pytest. The harness, not the approach, times ``prepare`` and records provenance.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core import plugins
from harness.core.approach import BUDGETS, Approach, Budget, Candidate, RunContext
from harness.core.compose import check_composition, make_approach, split_name
from harness.core.overrides import build_config, parse_overrides
from harness.data.noise import corrupt_answers
from harness.data.task_yaml import folder_task_options
from harness.measure.adaptive import DEFAULT_CI_WIDTH, AdaptivePlan, References
from harness.measure.metrics import Estimate
from harness.models.hardware import Precision, resolve_device, resolve_precision
from harness.models.loading import BaseModelSpec, load_model, resolve_model
from harness.runner.matrix import Cell, build_cells, check_sweeps, parse_sweeps
from harness.runner.provenance import code_version, package_versions, source_hash, stable_hash
from harness.runner.resources import peak_memory
from harness.runner.store import RunRecord, Store, check_results_file
from harness.runner.time_budget import TimeBudget
from harness.tasks import Task, TaskData, resolve_task


@dataclass
class SessionOptions:
    """The command-line choices of one session."""

    approaches: list[str]
    task: str = "sentiment"
    model: str = "smollm2-135m"
    seed: int = 0
    budget: str = "quick"
    results: Path = Path("results/tunebench.db")
    overrides: list[str] = field(default_factory=list)
    device: str = "auto"
    precision: str = "auto"
    """``auto`` (bf16 where the hardware runs it natively, else fp32/fp16), ``fp32``, ``bf16``."""
    session: str = "session"
    retrain: bool = False
    seeds: list[int] = field(default_factory=list)
    """Several seeds (``--seeds 0,1,2``): every approach runs once per seed; empty = ``seed``."""
    data_sizes: list[int] = field(default_factory=list)
    """Training-set sizes for the data-efficiency curve (``--data-sizes 64,256``)."""
    label_noise: list[float] = field(default_factory=list)
    """Shares of training answers corrupted for the robustness curve (``--label-noise 0.1,0.2``,
    :func:`harness.data.noise.corrupt_answers`)."""
    forgetting_tasks: list[str] = field(default_factory=list)
    """lm-eval task names or YAML paths used as forgetting probes besides ``general``."""
    forgetting_mode: str = "both"
    """How the forgetting suite scores probes: ``chat``, ``raw`` or ``both``."""
    probe_answers: str = "bare"
    """How the general probes phrase answer choices: ``bare`` or ``sentence``."""
    price_per_hour: float = 1.0
    """Price of one hour of the machine, for the cost figures (any currency)."""
    sweeps: list[str] = field(default_factory=list)
    """``--sweep approach.field=v1,v2`` options: the matrix's sweep points."""
    resume: bool = False
    """Reuse finished runs of identical cells (``--resume``) instead of running them again."""
    trust_remote_code: bool = False
    """Let a base model's own Python code run when it loads (``--trust-remote-code``)."""
    judge: str = ""
    """``--judge``: a model or approach that grades free replies (:mod:`harness.measure.judge`);
    empty: no judge."""
    judge_self: bool = False
    """``--judge-self``: let the judge grade its own replies."""
    adaptive: bool = False
    """``--adaptive on``: the accuracy suite stops scoring a candidate once settled
    (:mod:`harness.measure.adaptive`)."""
    ci_width: float = DEFAULT_CI_WIDTH
    """``--ci-width``: the width of the 95% sequence at which an adaptive estimate is precise."""
    time_budget: float | None = None
    """``--time-budget`` in seconds (:mod:`harness.runner.time_budget`; adaptive evaluation on);
    ``None``: no limit."""


@dataclass
class Run:
    """An open run: the candidate being measured and its row in the store."""

    id: int
    approach: str
    candidate: Candidate
    seed: int = 0
    point: tuple[tuple[str, Any], ...] = ()
    """The sweep point of the run's cell (``harness.runner.matrix.Cell.point``)."""
    scored: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """Per-item rows already computed for this candidate, by (scoring kind, item id), so
    suites never score the same item twice the same way
    (``harness.measure.evaluate.scored_once``)."""


class Recorder:
    """What a suite test uses to store its measurements (cf. pytest-benchmark's fixture)."""

    def __init__(self, session: ExperimentSession, run: Run, suite: str) -> None:
        self.session, self.run, self.suite = session, run, suite

    def metric(self, name: str, value: float | Estimate, **extra: Any) -> None:
        """Store a metric; an :class:`Estimate` brings its CI and n along. Its direction comes
        from the metric catalogue (:mod:`harness.measure.catalogue`), which must describe it."""
        higher_is_better = self.session.metrics.require(name).higher_is_better
        if isinstance(value, Estimate):
            low, high, n, point = value.low, value.high, value.n, value.value
        else:
            low = high = n = None
            point = float(value)
        self.session.store.add_metric(
            self.run.id, self.suite, name, point, low=low, high=high, n=n,
            higher_is_better=higher_is_better, extra=extra,
        )
        metric = {"suite": self.suite, "name": name, "value": point, "low": low, "high": high,
                  "n": n, "higher_is_better": higher_is_better, **extra}
        plugins.pm.hook.on_metric_recorded(run=self.run, metric=metric)

    def examples(self, rows: list[dict[str, Any]], part: str = "") -> None:
        """Store per-item rows (see ``Store.add_examples``); ``part`` names a sub-table."""
        self.session.store.add_examples(
            self.run.id, f"{self.suite}.{part}" if part else self.suite, rows
        )


class ExperimentSession:
    """Resolves options once, prepares candidates on demand and records their runs."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.registry = plugins.approaches()
        self.metrics = plugins.metrics()
        task = resolve_task(options.task)  # its Config types the --set task.NAME options
        self.overrides = parse_overrides(options.overrides, self.registry, task)
        task_options = {**folder_task_options(options.task, task),  # a folder's task.yaml
                        **self.overrides.pop("task", {})}
        self.sweeps = parse_sweeps(options.sweeps, self.registry)
        if not options.approaches:  # the swept approaches, else zero-shot
            options.approaches = list(dict.fromkeys(s.approach for s in self.sweeps)) or [
                "zero-shot"]
        for name in options.approaches:
            if name != "all":
                check_composition(name, self.registry)  # bad names fail now, listing what exists
        self._check_configs()  # bad option values fail now, before anything is recorded
        if options.budget not in BUDGETS:
            raise ValueError(f"unknown budget {options.budget!r}; use one of {', '.join(BUDGETS)}")
        self.budget: Budget = BUDGETS[options.budget]
        self.task: Task = resolve_task(options.task, task_options) if task_options else task
        self.headline_metric = self.task.headline_metric(self.task_data())  # bad data fails
        # now, naming file, line and field; a headline that does not fit the task too
        check_results_file(options.results)  # so does a file that is no results database
        self.device = resolve_device(options.device)
        self.precision: Precision = resolve_precision(options.precision, self.device)
        self.run_ids: list[int] = []
        self.interrupted = False
        self.reused: dict[str, int] = {}
        """Cells not run again because ``--resume`` found them finished: id -> run id."""
        self.cell_tests: dict[str, list[str]] = {}
        """Cell id -> the names of the tests selected for it (set by the pytest plugin)."""
        self.test_cells: dict[str, Cell] = {}
        """Test node id -> its cell."""
        self.failed_cells: set[str] = set()
        """Hashes of cells with a failed test: their runs get no cell hash, so ``--resume``
        runs them again."""
        self._memo: dict[Any, Any] = {}
        adaptive = options.adaptive or options.time_budget is not None
        self.adaptive_plan = AdaptivePlan(ci_width=options.ci_width) if adaptive else None
        """How the accuracy suite stops early (``None``: every item, ``--adaptive off``)."""
        self.time_budget = (TimeBudget(options.time_budget)
                            if options.time_budget is not None else None)
        """The clock of ``--time-budget``, started now (``None``: no budget)."""
        self.references = References()
        """Earlier candidates' per-item values, which adaptive candidates are paired with."""

    def _check_configs(self) -> None:
        """Build once the config of every approach a ``--set`` names or the session runs
        (each part of a composition, every registered one for ``all``), so a value a config
        refuses is an :class:`~harness.core.overrides.OverrideError` naming the option."""
        names = set(self.overrides)
        for name in self.options.approaches:
            names.update(self.registry.names() if name == "all" else split_name(name))
        for name in sorted(names):
            build_config(self.registry.get(name), self.overrides.get(name, {}))

    @functools.cached_property
    def base_candidate(self) -> Candidate:
        """The base model answering prompts as they are: the reference every candidate is
        compared with (win rate, divergence); loaded once per session, recorded as no run."""
        from harness.models.lm_candidate import LMCandidate

        base = LMCandidate(*self.shared_base)
        base.set_precision(self.precision)
        return base

    @functools.cached_property
    def shared_base(self) -> tuple[Any, Any]:
        """One frozen base model per session, shared by the base reference and the
        candidates of approaches that never change weights (``RunContext.frozen_base``)."""
        return self.load_base()

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per session for ``key`` (e.g. the base model's replies)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def seeds(self) -> list[int]:
        """The seeds every approach runs with (``--seeds``, else ``--seed``)."""
        return list(dict.fromkeys(self.options.seeds)) or [self.options.seed]

    def approach_names(self) -> list[str]:
        """The chosen approaches, ``all`` expanded to those that can run on the task (controls,
        ``Approach.control``, and opt-in approaches, ``Approach.opt_in``, only when named)."""
        names: list[str] = []
        for name in self.options.approaches:
            if name == "all":
                data = self.task_data()
                names += [
                    n for n in self.registry.names()
                    if not self.registry.get(n).control and not self.registry.get(n).opt_in
                    and self.make_approach(n).unsupported_reason(data) is None
                ]
            else:
                reason = self.make_approach(name).unsupported_reason(self.task_data())
                if reason:
                    raise ValueError(
                        f"approach {name!r} cannot run on task {self.task.name!r}: {reason}"
                    )
                names.append(name)
        return list(dict.fromkeys(names))

    @functools.cached_property
    def cells(self) -> list[Cell]:
        """The experiment matrix: every approach x sweep point x seed."""
        names = self.approach_names()
        check_sweeps(self.sweeps, names, self.overrides)
        cells = build_cells(names, self.sweeps, self.seeds)
        for cell in cells:  # a swept value a config refuses fails now, naming it
            if cell.point:
                try:
                    self.make_approach(cell.approach, cell.point)
                except ValueError as error:
                    raise ValueError(f"--sweep point {cell.label}: {error}") from None
        return cells

    def keep_only(self, cell: Cell) -> None:
        """Run just ``cell`` of the matrix (an executor's task running one cell)."""
        if cell not in self.cells:
            raise ValueError(f"cell {cell.id} is not in this session's matrix")
        self.__dict__["cells"] = [cell]  # replaces the cached property's value

    def task_data(self, seed: int | None = None, train_size: int | None = None,
                  label_noise: float = 0.0) -> TaskData:
        """The task's splits for ``seed`` cut to the budget; ``train_size`` replaces the
        budget's number of training examples (the data-efficiency curve); ``label_noise``
        corrupts that share of the training answers (the robustness curve)."""
        seed = self.options.seed if seed is None else seed
        if not label_noise:
            return self._task_data(seed, train_size)
        return self._noisy_task_data(seed, train_size, label_noise)

    @functools.cache  # noqa: B019 - one session object per process
    def _noisy_task_data(self, seed: int, train_size: int | None, share: float) -> TaskData:
        return corrupt_answers(self._task_data(seed, train_size), share, seed)

    @functools.cache  # noqa: B019 - one session object per process
    def _task_data(self, seed: int, train_size: int | None) -> TaskData:
        data = self._full_task_data(seed)
        budget = self.budget
        train = budget.train_examples if train_size is None else train_size
        if train_size is not None and train_size > len(data.train):
            raise ValueError(f"--data-sizes asks for {train_size} training examples; task "
                             f"{data.name!r} has {len(data.train)}")
        return data.subset(train, budget.validation_examples, budget.eval_examples)

    def full_task_data(self, seed: int | None = None) -> TaskData:
        """All of the task's data for ``seed`` (default: the session's), no split cut to the
        budget: what the data check (``suites/test_data_quality.py``) reads."""
        return self._full_task_data(self.options.seed if seed is None else seed)

    @functools.cache  # noqa: B019 - one session object per process
    def _full_task_data(self, seed: int) -> TaskData:
        return self.task.load(seed)

    @functools.cached_property
    def store(self) -> Store:
        """Opened on first write, so a session that measures nothing creates no file."""
        return Store(self.options.results)

    @functools.cached_property
    def base_model(self) -> BaseModelSpec:
        return resolve_model(self.options.model,
                             trust_remote_code=self.options.trust_remote_code)

    def load_base(self, *, trainable: bool = False, spec: BaseModelSpec | None = None,
                  **kwargs: Any) -> tuple[Any, Any]:
        """A fresh base model: fp32 when its weights will be trained (master weights), else
        with its weights stored in the compute dtype (frozen: a PEFT base, a prompted model);
        ``spec`` loads another model the same way (a ``--judge`` model), ``kwargs`` go to
        ``from_pretrained``."""
        model, tokenizer = load_model(spec or self.base_model, self.device,
                                      self.precision.weights_dtype(trainable), **kwargs)
        if not trainable:
            self.precision.store_frozen(model)
        return model, tokenizer

    def log_curve(self, run_id: int, step: int, split: str, name: str, value: float) -> None:
        """Store one training-curve point and tell the plugins."""
        self.store.add_curve_points(run_id, [(step, split, name, value)])
        plugins.pm.hook.on_train_log(run_id=run_id, step=step, split=split, name=name,
                                     value=value)

    def record_cost(self, run: Run) -> None:
        """What preparing the candidate cost, as metrics of the ``prepare`` suite."""
        recorder = Recorder(self, run, "prepare")
        for cost in self.metrics.costs():
            value = run.candidate.info.get(cost.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                recorder.metric(cost.name, value)

    def make_approach(self, name: str, point: tuple[tuple[str, Any], ...] = ()) -> Approach:
        """The approach or composition ``name`` with the session's ``--set`` overrides and
        the sweep ``point`` of a cell."""
        swept = Cell(name, 0, point).overrides()
        return make_approach(name, self.registry, lambda cls: build_config(
            cls, {**self.overrides.get(cls.name, {}), **swept.get(cls.name, {})}))

    def run_record(self, name: str, seed: int, train_size: int | None = None,
                   point: tuple[tuple[str, Any], ...] = (),
                   label_noise: float = 0.0) -> RunRecord:
        """How a run of ``name`` (at sweep ``point``) is described in the store."""
        approach = self.make_approach(name, point)
        data = self.task_data(seed, train_size, label_noise)
        config = approach.config_dict()
        if train_size is not None:
            config = {**config, "train_examples": train_size}
        if label_noise:
            config = {**config, "label_noise": label_noise}
        return RunRecord(
            session=self.options.session, approach=name, task=data.name,
            model=self.base_model.name, seed=seed, budget=self.budget.name,
            config=config, config_hash=stable_hash([name, config]),
            data_hash=data.fingerprint(), model_version=self.base_model.version,
            code_version=code_version(), packages=package_versions(), device=str(self.device),
            precision=self.precision.name, kind=approach.kind, sweep=dict(point),
        )

    def cell_hash(self, cell: Cell, tests: list[str]) -> str:
        """What a cell's results depend on: its run's config, data, model and code (the
        sources themselves, so uncommitted edits count), seed, precision, device, what is
        measured (``tests``, the suite test names) and the options that shape measurements."""
        record = self.run_record(cell.approach, cell.seed, point=cell.point)
        options = self.options
        return stable_hash({
            "config": record.config_hash, "data": record.data_hash,
            "model": record.model_version, "code": record.code_version,
            "sources": source_hash(), "seed": cell.seed, "precision": record.precision,
            "device": record.device, "tests": sorted(tests),
            "measure": [options.data_sizes, options.label_noise, options.forgetting_tasks,
                        options.forgetting_mode, options.probe_answers, options.price_per_hour,
                        options.judge, options.judge_self,
                        *([options.ci_width] if self.adaptive_plan else []),
                        *([options.time_budget] if options.time_budget else [])],
        })

    def cell_hash_of(self, cell: Cell) -> str:
        """:meth:`cell_hash` with the tests selected for the cell in this session."""
        return self.memo(("cell hash", cell), lambda: self.cell_hash(
            cell, self.cell_tests.get(cell.id, [])))

    def finished_run(self, cell_hash: str) -> int | None:
        """The latest finished run of the cell with this hash in the store, if any."""
        if not self.options.results.exists():
            return None
        rows = self.store.query("SELECT id FROM runs WHERE cell_hash = ? AND status = "
                                "'finished' ORDER BY id DESC LIMIT 1", (cell_hash,))
        return int(rows[0][0]) if rows else None

    def trains(self, name: str) -> bool:
        """Whether ``name`` (or a part of the composition) updates weights."""
        from harness.train.trained import TrainedApproach

        approach = self.make_approach(name)
        return any(isinstance(part, TrainedApproach)
                   for part in getattr(approach, "parts", [approach]))

    def run_context(self, data: TaskData, seed: int, run_dir: Path, **extra: Any) -> RunContext:
        """What an approach's ``prepare`` (and ``cache_folder``) sees of this session for
        ``data`` and ``seed``; ``extra`` sets the other fields (``log_curve``)."""
        return RunContext(
            task=data, load_base=self.load_base, model_name=self.base_model.name,
            model_version=self.base_model.version, budget=self.budget, seed=seed,
            device=self.device, precision=self.precision, run_dir=run_dir,
            retrain=self.options.retrain, shared_base=lambda: self.shared_base, **extra,
        )

    @contextmanager
    def open_run(
        self, name: str, seed: int | None = None, train_size: int | None = None,
        point: tuple[tuple[str, Any], ...] = (), cell_hash: str | None = None,
        label_noise: float = 0.0,
    ) -> Iterator[Run]:
        """Prepare ``name``'s candidate inside a run that always ends with a status.

        ``train_size`` trains on that many examples instead of the budget's (recorded in the
        run's config as ``train_examples``); ``label_noise`` trains on that share of training
        answers corrupted (recorded as ``label_noise``); ``point`` is the sweep point of the
        run's cell. ``cell_hash`` is stored when the run finishes without a failed test of its
        cell, so ``--resume`` can find it."""
        seed = self.options.seed if seed is None else seed
        approach = self.make_approach(name, point)
        data = self.task_data(seed, train_size, label_noise)
        record = self.run_record(name, seed, train_size, point, label_noise)
        run_id = self.store.start_run(record)
        self.run_ids.append(run_id)
        plugins.pm.hook.on_run_started(run_id=run_id, record=record)
        data_info = {"headline_metric": self.headline_metric,
                     **({"task_scoring": data.scoring} if data.scoring else {})}
        self.store.update_info(run_id, data_info)  # how it is scored, even if prepare fails
        status, error = "finished", None
        try:
            reason = approach.unsupported_reason(data)
            if reason:
                raise ValueError(f"approach {name!r} cannot run on task {data.name!r}: {reason}")
            run_dir = self.options.results.parent / "runs" / f"{run_id}-{name}"
            run_dir.mkdir(parents=True, exist_ok=True)
            context = self.run_context(data, seed, run_dir,
                                       log_curve=functools.partial(self.log_curve, run_id))
            started = time.perf_counter()
            with peak_memory(self.device) as memory:
                candidate = approach.prepare(context)
            candidate.info["prepare_seconds"] = round(time.perf_counter() - started, 3)
            candidate.set_precision(self.precision)
            candidate.info.update(memory)
            for field_name, value in data_info.items():  # so plugins (MLflow) see them too
                candidate.info.setdefault(field_name, value)
            self.store.update_info(run_id, candidate.info)
            run = Run(run_id, name, candidate, seed, point)
            self.record_cost(run)
            plugins.pm.hook.on_candidate_ready(candidate=candidate, run=run)
            yield run
        except KeyboardInterrupt:
            status, error = "interrupted", "KeyboardInterrupt"
            raise
        except BaseException as exc:
            status, error = "failed", "".join(traceback.format_exception_only(exc)).strip()
            raise
        finally:
            if self.interrupted and status == "finished":
                status = "interrupted"
            done = status == "finished" and cell_hash not in self.failed_cells
            self.store.finish_run(run_id, status, error, cell_hash=cell_hash if done else None)
            plugins.pm.hook.on_run_finished(run_id=run_id, status=status)

    def summary(self) -> str:
        """The results table of the session; after a Ctrl-C, also what was kept."""
        from harness.runner.summary import interrupted_line, session_table

        table = session_table(self.store, self.options.session, self.options.results,
                              self.metrics, reused=self.reused)
        if not self.interrupted:
            return table
        return "\n".join([table, interrupted_line(self.store, self.options.session,
                                                   self.options.results)])

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
