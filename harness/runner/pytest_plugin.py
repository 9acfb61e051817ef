"""pytest as the experiment runner: options, the candidate fixture, recording, the summary.

``pytest suites/ --approach=few-shot`` parametrizes every suite test that uses ``candidate``
over the chosen approaches (test ids are approach names, so ``-k`` selects them). A candidate
is prepared once per session and shared by every suite; pytest groups tests by approach, so
one candidate is alive at a time. Results go to the SQLite store given by ``--results``.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.approach import Candidate
from harness.measure.adaptive import DEFAULT_CI_WIDTH
from harness.measure.judge import resolve_judge
from harness.runner.budget_keeper import BudgetKeeper
from harness.runner.matrix import Cell
from harness.runner.progress import ProgressReporter, suite_of
from harness.runner.session import ExperimentSession, Recorder, Run, SessionOptions
from harness.runner.store import ResultsFileError, ResultsWriteError
from harness.runner.time_budget import parse_duration

STASH = pytest.StashKey[ExperimentSession]()
DATA_CHECK = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.core.plugins import approaches, tasks

    opt_in = [name for name in approaches().names() if approaches().get(name).opt_in]

    group = parser.getgroup("tunebench", "tunebench experiment options")
    group.addoption(
        "--approach", action="append", default=[], metavar="NAMES",
        help="approaches to measure: comma-separated names, repeatable, or 'all' "
        "(every registered approach that can run on the task, but controls and opt-in ones, "
        f"which run by name: all,{','.join(opt_in) or 'NAME'}). Default: zero-shot. "
        f"Registered: {', '.join(approaches().names())}.",
    )
    group.addoption(
        "--task", default="sentiment", metavar="TASK",
        help="a registered task name, a data file/folder (JSONL, JSON, CSV, TSV, parquet) or "
        "hf:<dataset id>; a data file's options are --set task.NAME=VALUE (labels, scoring, "
        "columns, label_names, encoding), --columns and --label-names. "
        f"Default: sentiment. Registered: {', '.join(tasks().names())}.",
    )
    group.addoption(
        "--columns", default="", metavar="FIELD=COLUMN,...",
        help="read a data file (--task=PATH) whose columns have other names, without "
        "rewriting it: FIELD=COLUMN pairs, e.g. --columns input=sentence,output=label. "
        "Fields: input (the prompt text; with no instruction it is the whole prompt), output "
        "(the answer), instruction, system, id, split, choices (and messages, prompt, chosen, "
        "rejected). Same as --set task.columns=...",
    )
    group.addoption(
        "--label-names", default="", metavar="VALUE=LABEL,...",
        help="rename a data file's answer (and choice) values on load, e.g. --label-names "
        "0=negative,1=positive, so a model chooses between words; any other value is an "
        "error naming its line. Same as --set task.label_names=...",
    )
    group.addoption(
        "--model", default="smollm2-135m", metavar="MODEL",
        help="base model: 'smollm2-135m' (embedded, offline), a local folder or a hub id.",
    )
    group.addoption(
        "--trust-remote-code", action="store_true",
        help="let the base model run Python code it ships with (a config auto_map); off by "
        "default, such a model is refused. Read the code first.",
    )
    group.addoption(
        "--judge", default="", metavar="MODEL_OR_APPROACH",
        help="grade free replies of open tasks with a language model (suites/test_judge.py, "
        "MT-Bench's single-answer grading and position-swapped pairwise protocol): a model as "
        "--model takes it, or a registered approach name (its candidate judges). A small "
        "judge is a demonstration, not a verdict. Default: no judge.",
    )
    group.addoption(
        "--judge-self", action="store_true",
        help="let the judge grade its own replies: the judge approach's cell, or zero-shot "
        "when the judge is the session's model (without it, those cells skip the judge "
        "suite). Recorded as self_judged with each judge metric.",
    )
    group.addoption("--seed", type=int, default=0, help="seed for data, sampling, training.")
    group.addoption(
        "--seeds", default="", metavar="N,N,...",
        help="run every approach once per seed (e.g. 0,1,2); the summary shows the mean, the "
        "spread and which candidates are statistically tied. Overrides --seed.",
    )
    group.addoption(
        "--data-sizes", default="", metavar="N,N,...",
        help="data-efficiency curve: train each training approach again on this many "
        "examples (e.g. 64,256,1024) and record accuracy against size.",
    )
    group.addoption(
        "--label-noise", default="", metavar="P,P,...",
        help="label-noise robustness curve: prepare each approach again with this share of "
        "its training answers corrupted, seeded (e.g. 0.1,0.2,0.4; each in [0, 1); eval "
        "data stays clean) and record accuracy and the paired drop against noise.",
    )
    group.addoption(
        "--forgetting-tasks", action="append", default=[], metavar="TASKS",
        help="lm-eval task names or task YAML paths (comma-separated, repeatable) scored before "
        "and after adaptation besides the built-in 'general' probes.",
    )
    group.addoption(
        "--forgetting-mode", default="both", choices=["chat", "raw", "both"],
        help="how the forgetting suite scores its probes: chat (through the chat template, "
        "as the candidate is used), raw (plain 'Question: ... Answer:' text, no template and "
        "no prompt rewriting, as lm-eval's HFLM and published forgetting studies score base "
        "models; metrics named ..._raw) or both. Default: both.",
    )
    group.addoption(
        "--probe-answers", default="bare", choices=["bare", "sentence"],
        help="how the forgetting suite's general probes phrase each answer choice: bare "
        "(the answer alone, as lm-eval scores ARC) or sentence ('The answer is X.'), to tell "
        "a change of reply format from a change of knowledge. Default: bare.",
    )
    group.addoption(
        "--price-per-hour", type=float, default=1.0, metavar="PRICE",
        help="price of one machine hour, for the cost figures (train cost, cost per 1,000 "
        "requests). Default: 1.0.",
    )
    group.addoption(
        "--budget", default="quick", choices=["smoke", "quick", "full"],
        help="data/compute size: smoke (seconds, tests), quick (default, minutes on a CPU), "
        "full (all data; GPU).",
    )
    group.addoption(
        "--adaptive", default="off", choices=["on", "off"],
        help="on: the accuracy suite scores each candidate's eval items in a seeded random "
        "order, about a tenth of them (10 to 50) between two looks, and stops once its question "
        "is settled: clearly worse than "
        "the best candidate before it, within the decision margin of it, or measured to "
        "--ci-width; the stored interval is then an anytime-valid confidence sequence "
        "(harness/measure/adaptive.py), with n_scored, n_available and why it stopped. "
        "off (default): every item.",
    )
    group.addoption(
        "--ci-width", type=float, default=DEFAULT_CI_WIDTH, metavar="W",
        help=f"with --adaptive on: the width of a candidate's 95%% interval at which its "
        f"estimate is precise enough (a score in [0, 1]). Default: {DEFAULT_CI_WIDTH:g}.",
    )
    group.addoption(
        "--time-budget", default=None, metavar="DURATION",
        help="finish within DURATION (10m, 90s, 1h30m), decision-relevant work first: "
        "accuracy adaptively (as --adaptive on; each candidate stops when settled or when its "
        "share of what is left is spent), then forgetting and latency, each on its share of "
        "the probes and requests when not all fit (skipped under 15%%), then the other suites, "
        "each run whole while its expected time fits, else skipped. Loading and training are "
        "never "
        "cut: a budget the training of uncached candidates alone exceeds is refused before "
        "anything trains. The session ends "
        "by saying which candidates were separated and, for those not, about how many more "
        "items would be needed. Local runs only (not --executor=ray). Default: no limit.",
    )
    group.addoption(
        "--results", default="results/tunebench.db", metavar="PATH",
        help="SQLite results database (created if missing). Default: results/tunebench.db.",
    )
    group.addoption(
        "--set", action="append", default=[], dest="overrides", metavar="APPROACH.FIELD=VALUE",
        help="override an approach option, e.g. --set few-shot.k=8 (repeatable), or a data "
        "file's task option, e.g. --set task.labels=negative,positive (scoring=auto|"
        "classification|generation, columns, label_names, encoding=cp1252).",
    )
    group.addoption(
        "--sweep", action="append", default=[], dest="sweeps", metavar="APPROACH.FIELD=V1,V2",
        help="run the approach once per value of one of its options, e.g. --sweep "
        "dpo.beta=0.05,0.1,0.3 (repeatable: sweeps of one approach form a grid; crossed with "
        "--approach and --seeds). Each point is its own run, its test id names it "
        "(dpo[beta=0.3]-seed1). Separate list values with ';'. Without --approach, the swept "
        "approaches are run.",
    )
    group.addoption(
        "--resume", action="store_true",
        help="reuse cells already finished in the results database (same config, data, "
        "model, code, seed, precision and selected tests) instead of running them again; "
        "failed or interrupted cells run again. The summary lists what was reused.",
    )
    group.addoption(
        "--executor", default="local", choices=["local", "ray"],
        help="local: run the cells one after another in this process (default). ray: submit "
        "each cell as a Ray task (pip install 'tunebench[ray]'); RAY_ADDRESS selects a "
        "cluster, else a local Ray instance starts with this machine's cores. Only this "
        "process writes the results database.",
    )
    group.addoption(
        "--ray-cpus", type=float, default=1.0, metavar="N",
        help="CPUs each cell asks Ray for (--executor=ray). Default: 1.",
    )
    group.addoption(
        "--ray-gpus", type=float, default=None, metavar="N",
        help="GPUs each training cell asks Ray for (--executor=ray). Default: 1 when the "
        "cluster has GPUs, else 0; cells that train nothing ask for none.",
    )
    group.addoption(  # read by harness/runner/ray_executor.py
        "--ray-retries", type=int, default=2, metavar="N",
        help="times a cell whose Ray worker or node is lost (killed, out of memory, node "
        "preempted or drained) is submitted again, on any node (--executor=ray); an error "
        "raised by the cell's own code is never retried. Default: 2.",
    )
    group.addoption(
        "--mlflow", action="store_true",
        help="mirror every run into MLflow tracking as it happens (pip install "
        "'tunebench[mlflow]'): one MLflow run per run, named like lora-seed0, with the "
        "approach config (approach.field), task, model, seed, budget, precision, device, "
        "hashes and code version as params; every metric with its CI and n (NAME, "
        "NAME_ci_low, NAME_ci_high, NAME_n); training curves by step (train_loss, "
        "validation_loss); the per-item examples as table artifacts (examples/SUITE.json); "
        "the status. Where: $MLFLOW_TRACKING_URI, else sqlite:///<results folder>/mlflow.db "
        "(artifacts in <results folder>/mlartifacts); experiment $MLFLOW_EXPERIMENT_NAME, else "
        "tunebench/<task>. If MLflow fails, a warning says so and the results file keeps "
        "everything.",
    )
    group.addoption(
        "--retrain", action="store_true",
        help="train again even if a cached candidate with the same config, data, model and "
        "code exists.",
    )
    group.addoption(
        "--device", default="auto", metavar="DEVICE",
        help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N.",
    )
    group.addoption(
        "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
        help="numeric precision of training and inference: auto (bf16 on CUDA devices and "
        "CPUs that run it natively (AVX512-BF16, AMX), fp16 on older GPUs, else fp32), or "
        "forced. Mixed precision keeps trained weights in fp32. Recorded with every run. "
        "Default: auto.",
    )


def _integers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise pytest.UsageError(
            f"{option}={text}: give comma-separated whole numbers, e.g. {option}=0,1,2"
        ) from None


def _shares(text: str, option: str) -> list[float]:
    try:
        shares = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise pytest.UsageError(
            f"{option}={text}: give comma-separated shares, e.g. {option}=0.1,0.2,0.4") from None
    wrong = [share for share in shares if not 0 <= share < 1]
    if wrong:
        raise pytest.UsageError(f"{option}: {wrong[0]:g} is not a share in [0, 1); give the "
                                f"share of training answers to corrupt, e.g. {option}=0.1,0.2")
    return shares


def _time_budget(config: pytest.Config) -> float | None:
    text = config.getoption("time_budget")
    if text is None:
        return None
    if config.getoption("executor") == "ray":
        raise pytest.UsageError("--time-budget plans one local session; with --executor=ray "
                                "the cells run side by side on the cluster: leave one out")
    try:
        return parse_duration(text)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def _task_shorthands(config: pytest.Config) -> list[str]:
    """``--columns`` and ``--label-names`` as the ``--set task.NAME=...`` items they stand for;
    giving one both ways is a usage error (neither silently wins)."""
    given = {item.partition("=")[0].replace(" ", "") for item in config.getoption("overrides")}
    items = []
    for name, flag in (("columns", "--columns"), ("label_names", "--label-names")):
        value = config.getoption(name)
        if value and f"task.{name}" in given:
            raise pytest.UsageError(f"{flag} and --set task.{name}=... both given; keep one")
        if value:
            items.append(f"task.{name}={value}")
    return items


def pytest_configure(config: pytest.Config) -> None:
    sizes = _integers(config.getoption("data_sizes"), "--data-sizes")
    if any(size < 1 for size in sizes):
        raise pytest.UsageError("--data-sizes: every size must be at least 1")
    options = SessionOptions(
        approaches=[n.strip() for v in config.getoption("approach") for n in v.split(",")],
        task=config.getoption("task"),
        model=config.getoption("model"),
        trust_remote_code=config.getoption("trust_remote_code"),
        seed=config.getoption("seed"),
        budget=config.getoption("budget"),
        results=Path(config.getoption("results")),
        overrides=config.getoption("overrides") + _task_shorthands(config),
        device=config.getoption("device"),
        precision=config.getoption("precision"),
        retrain=config.getoption("retrain"),
        seeds=_integers(config.getoption("seeds"), "--seeds"),
        data_sizes=sizes,
        label_noise=_shares(config.getoption("label_noise"), "--label-noise"),
        forgetting_tasks=[t.strip() for v in config.getoption("forgetting_tasks")
                          for t in v.split(",") if t.strip()],
        price_per_hour=config.getoption("price_per_hour"),
        forgetting_mode=config.getoption("forgetting_mode"),
        probe_answers=config.getoption("probe_answers"),
        sweeps=config.getoption("sweeps"),
        resume=config.getoption("resume"),
        judge=config.getoption("judge"),
        judge_self=config.getoption("judge_self"),
        adaptive=config.getoption("adaptive") == "on",
        ci_width=config.getoption("ci_width"),
        time_budget=_time_budget(config),
        session=time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3),
    )
    worker = cell_worker(config)
    if worker is not None:  # a cell run by an executor: its options, its one cell
        options = worker.options
    try:
        session = ExperimentSession(options)
        _ = session.cells  # approaches that cannot run on the task fail now
        resolve_judge(session)  # so does a --judge that is neither a model nor an approach
        config.stash[STASH] = session
    except (KeyError, ValueError, ResultsFileError) as error:
        raise pytest.UsageError(str(error)) from None
    config.pluginmanager.register(FailedCells(session), "tunebench-failed-cells")
    progress = ProgressReporter(config, session, worker=worker is not None)
    config.pluginmanager.register(progress, "tunebench-progress")
    if session.time_budget is not None and worker is None:
        config.pluginmanager.register(BudgetKeeper(session, progress), "tunebench-time-budget")
    if worker is not None:
        session.keep_only(worker.cell)
    elif config.getoption("executor") == "ray":
        from harness.runner.ray_executor import RayExecutor

        config.pluginmanager.register(RayExecutor(config, session), "tunebench-ray")
    if config.getoption("mlflow") and worker is None:
        _start_mlflow(config, session)


def _start_mlflow(config: pytest.Config, session: ExperimentSession) -> None:
    """``--mlflow``: the session's runs mirrored into MLflow (``plugins.mlflow_tracking``,
    which imports MLflow only now)."""
    from plugins.mlflow_tracking import MlflowSession, MlflowUnavailable

    try:
        tracking = MlflowSession.start(session.options.results, session.options.session)
    except MlflowUnavailable as error:
        raise pytest.UsageError(f"--mlflow: {error}") from None
    config.pluginmanager.register(tracking, "tunebench-mlflow")


class CellWorker:
    """Registered by an executor that runs one cell in a fresh pytest session (a Ray task):
    the driver's options and the cell, so node ids match the driver's."""

    def __init__(self, options: SessionOptions, cell: Cell) -> None:
        self.options, self.cell = options, cell


def cell_worker(config: pytest.Config) -> CellWorker | None:
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, CellWorker)),
                None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" in metafunc.fixturenames and STASH in metafunc.config.stash:
        cells = metafunc.config.stash[STASH].cells
        metafunc.parametrize("cell", cells, ids=[c.id for c in cells], scope="session",
                             indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which tests each cell runs: part of its hash for ``--resume``."""
    session = config.stash.get(STASH, None)
    if session is None:
        return
    for item in items:
        cell = cell_of(item)
        if cell is not None:
            session.cell_tests.setdefault(cell.id, []).append(item.nodeid.partition("[")[0])
            session.test_cells[item.nodeid] = cell


def cell_of(item: pytest.Item) -> Cell | None:
    """The matrix cell a collected test belongs to (``None`` for tests of no cell)."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("cell") if callspec is not None else None


class FailedCells:
    """A failed test marks its cell failed: its run gets no cell hash, so ``--resume`` runs
    it again."""

    def __init__(self, session: ExperimentSession) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self.session.test_cells.get(report.nodeid)
        if report.failed and cell is not None:
            self.session.failed_cells.add(self.session.cell_hash_of(cell))


@pytest.fixture(scope="session")
def cell(tunebench: ExperimentSession, request: pytest.FixtureRequest) -> Cell:
    """The cell of the matrix under test (approach, sweep point, seed); with ``--resume``
    a cell already finished in the store is skipped and reported as reused."""
    cell: Cell = request.param
    if tunebench.options.resume:
        reused = tunebench.finished_run(tunebench.cell_hash_of(cell))
        if reused is not None:
            tunebench.reused[cell.id] = reused
            pytest.skip(f"{cell.id}: reused run {reused} (--resume)")
    return cell


@pytest.fixture(scope="session")
def approach_name(cell: Cell) -> str:
    """The approach (or composition) under test."""
    return cell.approach


@pytest.fixture(scope="session")
def run_seed(cell: Cell) -> int:
    """The seed of the run under test (one cell per seed with ``--seeds``)."""
    return cell.seed


@pytest.fixture(scope="session")
def tunebench(request: pytest.FixtureRequest) -> ExperimentSession:
    """The experiment session: options, task, base model, results store."""
    return request.config.stash[STASH]


@pytest.fixture(scope="session")
def task(tunebench: ExperimentSession) -> Any:
    """The task object (scoring rules) being measured."""
    return tunebench.task


@pytest.fixture(scope="session")
def task_data(tunebench: ExperimentSession, run_seed: int) -> Any:
    """The task's splits for the run's seed, cut to the budget."""
    return tunebench.task_data(run_seed)


@pytest.fixture(scope="session")
def session_data(tunebench: ExperimentSession) -> Any:
    """All of the task's data for the session's seed, no split cut to the budget: what tests
    of no matrix cell read (the data check, ``suites/test_data_quality.py``)."""
    return tunebench.full_task_data()


@pytest.fixture(scope="session")
def run(tunebench: ExperimentSession, cell: Cell) -> Iterator[Run]:
    """One cell's run: its candidate is prepared once and the run closed with a status."""
    with tunebench.open_run(cell.approach, cell.seed, point=cell.point,
                            cell_hash=tunebench.cell_hash_of(cell)) as opened:
        yield opened


@pytest.fixture(scope="session")
def candidate(run: Run) -> Candidate:
    """The prepared candidate of the approach under test (shared by every suite)."""
    return run.candidate


@pytest.fixture
def record(tunebench: ExperimentSession, run: Run, request: pytest.FixtureRequest) -> Recorder:
    """Records metrics and per-item examples of the current candidate into the store."""
    suite = suite_of(request.node.nodeid)
    return Recorder(tunebench, run, suite)


@contextlib.contextmanager
def _show_progress(item: pytest.Item) -> Iterator[None]:
    """Let progress bars of candidate work through output capture on an interactive terminal."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if "candidate" not in getattr(item, "fixturenames", ()) or capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        interactive = sys.stderr.isatty()  # while capturing, fd 2 is not the terminal
    if not interactive:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


@pytest.hookimpl(wrapper=True, trylast=True)  # inside the capture plugin's wrapper
def pytest_runtest_setup(item: pytest.Item) -> Any:
    with _show_progress(item):
        return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)  # inside the capture plugin's wrapper
def pytest_runtest_call(item: pytest.Item) -> Any:
    with _show_progress(item):
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Runs before pytest tears the session fixtures down, so open runs close as interrupted.
    experiment = session.config.stash.get(STASH, None)
    if experiment is not None and exitstatus == pytest.ExitCode.INTERRUPTED:
        experiment.interrupted = True


def pytest_exception_interact(node: pytest.Item, call: pytest.CallInfo[Any],
                              report: pytest.TestReport) -> None:
    """A write the results file refused (disk full, file too large) ends the session, as
    ``--maxfail`` would: nothing measured later could be stored either. The open run is closed
    as ``interrupted`` and the summary says what was kept."""
    if call.excinfo is not None and isinstance(call.excinfo.value, ResultsWriteError):
        node.session.shouldfail = str(call.excinfo.value)
        experiment = node.config.stash.get(STASH, None)
        if experiment is not None:
            experiment.interrupted = True


def data_check_lines(config: pytest.Config) -> list[str]:
    """The data check at the start of a session on a user's data file (``--task=PATH``), once:
    the checks that need no tokenizer (``harness.data.quality.cheap_findings``) on all of its
    data, stored, and the lines the session header shows. Nothing for built-in tasks, in a
    cell worker of an executor, or with ``--collect-only``."""
    if DATA_CHECK in config.stash:
        return config.stash[DATA_CHECK]
    from harness.data.quality import cheap_findings, header_lines, store_findings
    from harness.tasks.data_file import DataFileTask

    session = config.stash.get(STASH, None)
    lines: list[str] = []
    if (session is not None and isinstance(session.task, DataFileTask)
            and cell_worker(config) is None and not config.option.collectonly):
        data = session.full_task_data()
        findings = cheap_findings(data)
        lines = header_lines(findings, session.options.task)
        try:
            store_findings(session.store, session.options.session, data, findings)
        except ResultsWriteError as error:
            lines.append(f"  (not stored: {error})")
    config.stash[DATA_CHECK] = lines
    return lines


def pytest_report_header(config: pytest.Config) -> list[str]:
    return data_check_lines(config)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``-q`` pytest shows no header: the data check's lines are written anyway."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and (config.get_verbosity() < 0 or config.option.no_header):
        for line in data_check_lines(config):
            reporter.write_line(line)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(STASH, None)
    if session is not None and (session.run_ids or session.reused):
        terminalreporter.write_sep("=", "tunebench results")
        terminalreporter.write_line(session.summary())


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(STASH, None)
    if session is not None:
        session.close()


