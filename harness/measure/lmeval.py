"""The lm-eval bridge: any tunebench candidate measured on lm-evaluation-harness tasks.

lm-eval (Gao et al., "A framework for few-shot language model evaluation", EleutherAI) holds
hundreds of standard benchmarks as task YAML files. :class:`CandidateLM` adapts a
:class:`~harness.core.approach.Candidate` to lm-eval's model interface (``lm_eval.api.model.LM``),
so a prompted, retrieval-augmented or fine-tuned candidate is scored through its own
``score_choices`` / ``generate`` exactly as the suites score it; :func:`evaluate_tasks` runs
tasks (by name, or a path to a task YAML) and returns aggregate metrics plus one row per
document, with stable ``item_id`` so that two candidates (say a base model and its fine-tuned
version, for forgetting) can be paired item by item.

Two modes:

- ``"chat"`` (default): the context lm-eval builds (instructions, few-shot examples, question)
  becomes one user message and the continuation is scored or generated as the assistant's
  reply, like lm-eval's ``--apply_chat_template`` (with few-shot examples inside the one user
  turn). The candidate's prompt rewriting (few-shot demonstrations, retrieved passages)
  applies.
- ``"raw"``: context + continuation are scored as plain text through the candidate's model and
  tokenizer, like lm-eval's HFLM (no chat template, no rewriting); the numbers to compare with
  published base-model results. Only for candidates that expose ``model`` and ``tokenizer``.

Perplexity tasks (``loglikelihood_rolling``) always score raw text, via
:meth:`Candidate.loglikelihood_rolling`. Generation is greedy only.

lm-eval downloads task data from the Hugging Face Hub; offline (``HF_DATASETS_OFFLINE=1``,
``HF_HUB_OFFLINE=1``, honoured even if set after ``datasets`` was imported) only tasks whose
data is local work: already in the ``datasets`` cache, or a task YAML with
``dataset_path: json`` (or csv, parquet) and ``dataset_kwargs: {data_files: ...}``. Relative
``data_files`` are resolved by ``datasets`` against the working directory.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lm_eval.api.model import LM
from tqdm.auto import tqdm

from harness.core.approach import Candidate
from harness.models.raw_text import has_language_model, raw_loglikelihood

MODES = ("chat", "raw")
CHUNK = 64
"""Contexts (or texts) handed to the candidate per call: large enough to batch well, small
enough for a smooth progress bar."""
PROGRESS_MIN_REQUESTS = 64
"""Shorter request lists get no progress bar."""
DEFAULT_MAX_GEN_TOKS = 64
"""Generation length when a task's ``generation_kwargs`` give no ``max_gen_toks``."""
QUIET_LEVEL = logging.WARNING
"""Level of the ``lm_eval`` loggers while :func:`evaluate_tasks` runs: its INFO lines (seeds,
"Using pre-initialized model", one per phase and task) are noise inside tunebench."""
NOISY_WARNINGS = ("Overwriting default num_fewshot",)
"""Beginnings of lm-eval warnings that only restate what the caller asked for; dropped at the
source. Errors always pass."""
NOT_METRICS = ("sample_len",)
"""Numbers in lm-eval's results that are not metrics (the document count is ``len(items)``)."""


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not str(record.msg).startswith(NOISY_WARNINGS)


@dataclass
class LMEvalResult:
    """One lm-eval task's outcome for one candidate."""

    task: str
    metrics: dict[str, float]
    """lm-eval's aggregate metrics (e.g. ``acc``, ``acc_stderr``); keys keep a filter suffix
    (``exact_match,strict-match``) only for filters other than lm-eval's default ``none``."""
    items: list[dict[str, Any]] = field(default_factory=list)
    """One row per document, in document order (empty for groups):

    - ``item_id``: lm-eval's document index, as a str (stable across candidates and runs);
    - ``prompt``: the context lm-eval built (before any rewriting by the candidate);
    - ``reference``: the target as a str (for multiple choice, the gold choice's index);
    - ``prediction``: for multiple choice the index of the most likely choice, for generation
      the filtered reply, otherwise the response as text;
    - ``correct``: the document's ``acc`` (else ``exact_match``) > 0; ``None`` without either;
    - ``extra``: the per-document metric values (other filters' as ``metric,filter``), the
      ``filter`` they come from and, for multiple choice, ``choice_logprobs``.
    """


def _progress(total: int, label: str) -> Any:
    return tqdm(total=total, desc=label, unit="request", leave=False,
                disable=True if total < PROGRESS_MIN_REQUESTS else None)


def _user_turn(context: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": context.strip()}]


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CandidateLM(LM):
    """lm-eval's model interface over a tunebench :class:`Candidate`.

    ``mode`` is ``"chat"`` (the context as one user turn, continuations scored by
    ``candidate.score_choices``) or ``"raw"`` (plain text through ``candidate.model`` like
    lm-eval's HFLM); see the module docstring.

    ``is_greedy`` (used by a few loglikelihood tasks such as LAMBADA's ``acc``) is computed in
    ``"raw"`` mode only; in ``"chat"`` mode it is always ``False``, since the candidate may
    rewrite the prompt into a conversation the bridge never sees.
    """

    def __init__(self, candidate: Candidate, mode: str = "chat") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "raw" and not has_language_model(candidate):
            raise NotImplementedError(
                f"{type(candidate).__name__} has no language model (model and tokenizer) to "
                "score raw text; use mode='chat', which goes through score_choices")
        self.candidate = candidate
        self.mode = mode
        self._warned_sampling = False

    # ------------------------------------------------------------------ loglikelihood
    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        """``(log P(continuation | context), is_greedy)`` per request (``.args`` pair)."""
        pairs = [req.args for req in requests]
        if self.mode == "raw":
            return self._raw_loglikelihood(pairs)
        # One score_choices call scores all continuations of a context (a document's choices).
        by_context: dict[str, list[int]] = {}
        for index, (context, continuation) in enumerate(pairs):
            if continuation.lstrip():  # an empty continuation has log-probability 0
                by_context.setdefault(context.strip(), []).append(index)
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        with _progress(len(pairs), "lm-eval loglikelihood") as bar:
            for chunk in _chunks(list(by_context.items())):
                prompts = [_user_turn(context) for context, _ in chunk]
                choices = [[pairs[i][1].lstrip() for i in indices] for _, indices in chunk]
                scores = self.candidate.score_choices(prompts, choices)
                for (_, indices), row in zip(chunk, scores, strict=True):
                    for index, score in zip(indices, row, strict=True):
                        results[index] = (float(score), False)
                bar.update(sum(len(indices) for _, indices in chunk))
        return results

    def _raw_loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """HFLM's encoding and scoring (:func:`harness.models.raw_text.raw_loglikelihood`)."""
        scorable = sum(1 for _, continuation in pairs if continuation)
        with _progress(scorable, "lm-eval loglikelihood (raw)") as bar:
            return raw_loglikelihood(self.candidate, pairs, on_chunk=bar.update)

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        """Log-probability of each whole text (``.args == (text,)``), for perplexity."""
        texts = [req.args[0] for req in requests]
        totals: list[float] = []
        with _progress(len(texts), "lm-eval loglikelihood_rolling") as bar:
            for chunk in _chunks(texts):
                totals.extend(float(total) for total, _ in
                              self.candidate.loglikelihood_rolling(chunk))
                bar.update(len(chunk))
        return totals

    # ------------------------------------------------------------------ generation
    def _check_greedy(self, gen_kwargs: dict[str, Any]) -> None:
        sampling = bool(gen_kwargs.get("do_sample", False))
        with contextlib.suppress(TypeError, ValueError):
            sampling = sampling or float(gen_kwargs.get("temperature") or 0) > 0
        if sampling and not self._warned_sampling:
            self._warned_sampling = True
            warnings.warn(f"the task asks for sampling ({gen_kwargs}); tunebench candidates "
                          "generate greedily, so this is greedy decoding", stacklevel=3)

    def generate_until(self, requests: list[Any]) -> list[str]:
        """Greedy reply to each context (``.args == (context, gen_kwargs)``), cut before the
        first of ``gen_kwargs["until"]``."""
        groups: dict[int, list[int]] = {}
        stops: list[list[str]] = []
        for index, req in enumerate(requests):
            gen_kwargs = dict(req.args[1] or {})
            self._check_greedy(gen_kwargs)
            until = gen_kwargs.get("until") or []
            stops.append([until] if isinstance(until, str) else [s for s in until if s])
            tokens = int(gen_kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
            groups.setdefault(tokens, []).append(index)
        outputs: list[str] = [""] * len(requests)
        with _progress(len(requests), "lm-eval generate_until") as bar:
            for max_new_tokens, indices in groups.items():
                for chunk in _chunks(indices):
                    prompts = [_user_turn(requests[i].args[0]) for i in chunk]
                    texts = self.candidate.generate(prompts, max_new_tokens=max_new_tokens)
                    for index, text in zip(chunk, texts, strict=True):
                        outputs[index] = cut_at_stops(text, stops[index])
                    bar.update(len(chunk))
        return outputs


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the earliest occurrence of any of ``stops``."""
    end = len(text)
    for stop in stops:
        if stop:
            found = text.find(stop)
            if 0 <= found < end:
                end = found
    return text[:end]


# ---------------------------------------------------------------------- running tasks
class _TolerantLoader(yaml.SafeLoader):
    """Reads task YAMLs without importing their ``!function`` helpers."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _yaml_task_name(path: Path) -> tuple[str, bool]:
    """The task (or group) name a task YAML defines, and whether it is a group."""
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TolerantLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not a readable task YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not an lm-eval task YAML (no mapping at the top)")
    name = config.get("task")
    if isinstance(name, str) and name:
        return name, False
    if isinstance(config.get("group"), str):
        return config["group"], True
    raise ValueError(f"{path}: no 'task:' (or 'group:') name in this task YAML")


def _is_path(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or os.sep in spec or Path(spec).is_file()


@contextlib.contextmanager
def _quiet_and_offline() -> Iterator[None]:
    """lm-eval's chatter down to warnings (errors always pass), and the Hub offline switches
    honoured even if set after ``datasets`` / ``huggingface_hub`` read them at import."""
    from harness.data.hub import hub_offline_honoured

    root, evaluator = logging.getLogger("lm_eval"), logging.getLogger("lm_eval.evaluator")
    level, noise = root.level, _DropNoise()
    try:
        if level < QUIET_LEVEL:  # NOTSET included; never lowers a stricter level set by the user
            root.setLevel(QUIET_LEVEL)
        evaluator.addFilter(noise)
        with hub_offline_honoured():
            yield
    finally:
        evaluator.removeFilter(noise)
        root.setLevel(level)


def _task_manager(specs: Sequence[str]) -> tuple[Any, list[str]]:
    """A TaskManager that knows every spec, and the task names to load.

    A YAML path adds its folder to ``include_path`` (so its ``include:`` siblings resolve) and
    contributes the name in its ``task:`` field; lm-eval's own catalogue (a few seconds to
    index) is only read when a spec is a name, or a YAML group that may list built-in tasks.
    """
    from lm_eval.tasks import TaskManager

    names: list[str] = []
    folders: list[str] = []
    need_defaults = False
    for spec in specs:
        if _is_path(spec):
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise ValueError(f"no such task YAML: {spec}")
            name, is_group = _yaml_task_name(path)
            need_defaults |= is_group
            if str(path.parent) not in folders:
                folders.append(str(path.parent))
        else:
            name, need_defaults = spec, True
        if name not in names:
            names.append(name)
    manager = TaskManager(include_path=folders or None, include_defaults=need_defaults)
    known = set(manager.all_tasks)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, manager.all_tasks, n=5, cutoff=0.6)
            hint = (f"did you mean {', '.join(close)}?" if close else
                    "list the known ones with `lm-eval ls tasks`")
            raise ValueError(f"unknown lm-eval task {name!r}; {hint}")
    return manager, names


def _numeric_metrics(raw: dict[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, value in raw.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and key not in NOT_METRICS:
            metrics[key.removesuffix(",none")] = float(value)
    return metrics


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types (per-sample metric values may be NumPy scalars or tuples),
    so the rows can go to the store as they are."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _choice_index(reference: Any, continuations: Sequence[str]) -> Any:
    """A multiple-choice target given as the choice's text, as its index (lm-eval's gold)."""
    if isinstance(reference, str) and not reference.isdigit():
        stripped = [c.strip() for c in continuations]
        if reference.strip() in stripped:
            return stripped.index(reference.strip())
    return reference


def _best_choice(responses: Sequence[Any]) -> str:
    logprobs = [r[0] if isinstance(r, (tuple, list)) else r for r in responses]
    return str(max(range(len(logprobs)), key=lambda i: (logprobs[i], -i)))


def _items(samples: Sequence[dict[str, Any]], output_type: str) -> list[dict[str, Any]]:
    """One row per document from lm-eval's logged samples (one per document and filter)."""
    by_doc: dict[int, list[dict[str, Any]]] = {}
    for sample in samples:
        by_doc.setdefault(int(sample["doc_id"]), []).append(sample)
    items = []
    for doc_id in sorted(by_doc):
        first, *others = by_doc[doc_id]
        arguments = [tuple(a) for a in first["arguments"]]
        responses = first["filtered_resps"]
        metrics = {name: _plain(first[name]) for name in first["metrics"]}
        for other in others:  # further filters' values, under "metric,filter"
            metrics.update({f"{name},{other['filter']}": _plain(other[name])
                            for name in other["metrics"]})
        reference = first["target"]
        if output_type == "multiple_choice":
            reference = _choice_index(reference, [a[1] for a in arguments])
            prediction: str | None = _best_choice(responses)
        elif output_type == "generate_until":
            response = responses[0] if responses else None
            prediction = response[0] if isinstance(response, list) and response else response
        elif responses:  # loglikelihood (logprob, is_greedy) or rolling logprob
            response = responses[0]
            prediction = str(response[0] if isinstance(response, (tuple, list)) else response)
        else:
            prediction = None
        graded = next((metrics[m] for m in ("acc", "exact_match") if m in metrics), None)
        correct = None
        if isinstance(graded, (int, float)) and not math.isnan(graded):
            correct = bool(graded > 0)
        extra: dict[str, Any] = {**metrics, "filter": first["filter"]}
        if output_type == "multiple_choice":
            extra["choice_logprobs"] = [
                float(r[0] if isinstance(r, (tuple, list)) else r) for r in responses]
        items.append({
            "item_id": str(doc_id),
            "prompt": arguments[0][0] if arguments else "",
            "reference": str(reference),
            "prediction": None if prediction is None else str(prediction),
            "correct": correct,
            "extra": extra,
        })
    return items


def evaluate_tasks(
    candidate: Candidate,
    tasks: Sequence[str],
    *,
    limit: int | None = None,
    num_fewshot: int | None = None,
    seed: int = 0,
    mode: str = "chat",
) -> dict[str, LMEvalResult]:
    """Run lm-eval ``tasks`` (names, or paths to task YAML files) on ``candidate``.

    ``limit`` keeps the first documents of each task; ``num_fewshot`` overrides the tasks'
    defaults (lm-eval keeps tasks that pin it to 0); ``seed`` seeds Python, NumPy, torch and
    lm-eval's few-shot sampler. Returns one :class:`LMEvalResult` per task (and per group, with
    aggregate metrics only), keyed by lm-eval's task name.
    """
    import lm_eval

    if isinstance(tasks, str):
        tasks = [tasks]
    if not tasks:
        raise ValueError("no lm-eval tasks given")
    model = CandidateLM(candidate, mode=mode)
    with _quiet_and_offline():
        manager, names = _task_manager(tasks)
        results = lm_eval.simple_evaluate(
            model=model, tasks=names, task_manager=manager, limit=limit,
            num_fewshot=num_fewshot, log_samples=True, random_seed=seed,
            numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
    if results is None:  # only when lm-eval runs distributed, on a rank other than 0
        return {}
    samples = results.get("samples", {})
    configs = results.get("configs", {})
    outcome: dict[str, LMEvalResult] = {}
    for name, raw in results.get("results", {}).items():
        output_type = configs.get(name, {}).get("output_type", "")
        outcome[name] = LMEvalResult(name, _numeric_metrics(raw),
                                     _items(samples.get(name, []), output_type))
    for name, raw in results.get("groups", {}).items():
        outcome.setdefault(name, LMEvalResult(name, _numeric_metrics(raw)))
    return outcome
