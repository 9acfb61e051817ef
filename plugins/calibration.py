"""Contextual calibration of choice scores (Zhao, Wallace, Feng, Klein & Singh, 2021,
"Calibrate Before Use: Improving Few-Shot Performance of Language Models").

A prompted model is biased towards some answers whatever the input: towards labels that are
frequent or recent among the demonstrations, or common in pre-training. Zhao et al. estimate
that bias by asking the same prompt about a *content-free* input ("N/A", "[MASK]", the empty
string) and dividing it out: with ``p_cf`` the probabilities of the choices on the
content-free inputs, a real item's probabilities ``p`` become ``softmax(W p + b)`` with
``W = diag(p_cf)^-1`` and ``b = 0``, i.e. ``p / p_cf`` renormalised. In log space (which is
what :meth:`CalibratedCandidate.score_choices` returns): ``log_softmax(log p - log p_cf)``,
so on the content-free input itself every choice gets the same probability.

How this module applies the method to chat prompts and the harness's scoring:

* **Prompt construction.** The content-free prompt is a real item's prompt with only the test
  input replaced (:func:`content_free_prompt`): the system message, earlier turns and the
  candidate's ``rewrite`` (few-shot demonstrations) stay, since the content-free prompt goes
  through exactly the same ``score_choices`` path as the items. In the last user message, the
  text before its last blank line (``"\\n\\n"``) is taken to be the task's instruction and kept,
  as is a field label opening the last paragraph (``"Review: "``, ``"Question: "``); only the
  rest is replaced (:func:`replace_input`). The sentiment task's ``"<instruction>\\n\\nReview:
  <text>"`` thus becomes ``"<instruction>\\n\\nReview: N/A"``, the paper's "keep the prompt
  format, replace the test input". A message without a blank line is all input, and is
  replaced whole (keeping its field label); an input that itself spans several paragraphs
  keeps all but its last one.
* **One estimate per set of choices.** ``p_cf`` depends on the choices, so it is cached by
  their tuple: a classification task, whose items share one label set, costs one estimate
  (three content-free prompts); items with their own choices (multiple-choice questions,
  preference pairs) get their own. The first prompt met with a set of choices is its
  template (only its format matters: its input is replaced).
* **Multi-token choices.** Scores are the harness's summed token log-likelihoods, i.e. the
  log-probability of the whole choice sequence. They are renormalised over the choices
  (a softmax over the summed log-likelihoods) before ``p_cf`` is divided out, so a long
  choice's lower sequence probability is divided by its equally lower content-free
  probability rather than penalised twice.
* **Averaging.** ``p_cf`` is the mean of the renormalised probability vectors of the
  content-free inputs (:data:`CONTENT_FREE`, the paper's three), computed in log space.
* **Scope.** Only constrained choice scoring is calibrated: ``generate`` is unchanged, and a
  single choice (a reply scored alone) keeps its raw log-likelihood, as renormalising over
  one choice would make it 0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from harness.models.lm_candidate import LMCandidate
from harness.tasks.base import Message

CONTENT_FREE: tuple[str, ...] = ("N/A", "[MASK]", "")
"""The content-free inputs whose choice probabilities are averaged (Zhao et al., 2021)."""

_FIELD_LABEL = re.compile(r"[A-Z][A-Za-z]*(?: [A-Za-z]+){0,2}:[ \t]*")
"""A field label opening the input paragraph: ``"Review: "``, ``"Question: "``."""


def replace_input(content: str, text: str) -> str:
    """``content`` (a user message) with its test input replaced by ``text``.

    Everything up to the last blank line is kept as the task's instruction, and so is a field
    label that opens the last paragraph; the rest of that paragraph is the input.
    """
    instruction, separator, paragraph = content.rpartition("\n\n")
    label = _FIELD_LABEL.match(paragraph)
    return f"{instruction}{separator}{label.group(0) if label else ''}{text}"


def content_free_prompt(messages: Sequence[Message], text: str) -> list[Message]:
    """``messages`` with the last user message's input replaced by the content-free ``text``
    (:func:`replace_input`); every other message is kept as it is."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None:
        raise ValueError("a prompt to calibrate needs a user message holding its input")
    prompt = [dict(m) for m in messages]
    prompt[last]["content"] = replace_input(prompt[last]["content"], text)
    return prompt


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if math.isinf(top):
        return top
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def log_normalise(scores: Sequence[float]) -> list[float]:
    """Log-probabilities of the choices renormalised over them (a log-softmax of their
    summed log-likelihoods)."""
    total = _logsumexp(scores)
    return [s - total for s in scores]


def content_free_logprobs(rows: Sequence[Sequence[float]]) -> list[float]:
    """``log p_cf``: the log of the mean over content-free inputs (``rows`` of summed
    log-likelihoods, one per input) of the choices' renormalised probabilities."""
    normalised = [log_normalise(row) for row in rows]
    return [_logsumexp(column) - math.log(len(rows)) for column in zip(*normalised, strict=True)]


def calibrate(scores: Sequence[float], log_p_cf: Sequence[float]) -> list[float]:
    """Calibrated log-probabilities of the choices: ``log_softmax(log p - log p_cf)`` with
    ``p`` the renormalised probabilities of ``scores`` (Zhao et al.'s ``W = diag(p_cf)^-1``,
    ``b = 0``)."""
    if len(scores) != len(log_p_cf):
        raise ValueError(f"{len(scores)} scores for {len(log_p_cf)} content-free probabilities")
    return log_normalise([p - cf for p, cf in zip(log_normalise(scores), log_p_cf, strict=True)])


def label_key(choices: Sequence[str]) -> str:
    """How a set of choices is named in ``candidate.info["calibration"]`` (JSON keys are
    strings): the JSON list of the choices."""
    return json.dumps(list(choices), ensure_ascii=False)


class CalibratedCandidate(LMCandidate):
    """An :class:`LMCandidate` whose :meth:`score_choices` returns contextually calibrated
    log-probabilities (Zhao et al., 2021; see the module docstring).

    ``content_free`` are the content-free inputs averaged (default :data:`CONTENT_FREE`); the
    other arguments are :class:`LMCandidate`'s. Each estimate is recorded in
    ``info["calibration"]`` as ``{label_key(choices): [p_cf of each choice]}``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        rewrite: Callable[[Sequence[Message]], list[Message]] | None = None,
        *,
        content_free: Sequence[str] = CONTENT_FREE,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, tokenizer, rewrite, **kwargs)
        if not content_free:
            raise ValueError("calibration needs at least one content-free input")
        self.content_free = tuple(content_free)
        self._estimates: dict[tuple[str, ...], list[float]] = {}
        self._estimated_with = self.rewrite
        self.info["calibration"] = {}

    @property
    def log_p_cf(self) -> dict[tuple[str, ...], list[float]]:
        """The cached ``log p_cf`` per tuple of choices. The estimates hold for the prompt
        construction they were made with: a copy whose ``rewrite`` was changed (such as a view
        without the demonstrations) starts a cache of its own."""
        if self._estimated_with is not self.rewrite:
            self._estimates, self._estimated_with = {}, self.rewrite
        return self._estimates

    def estimate(self, templates: dict[tuple[str, ...], Sequence[Message]]) -> None:
        """Compute and cache ``log p_cf`` for each set of choices in ``templates`` not cached
        yet, from its template prompt, in one uncalibrated scoring call."""
        missing = [(choices, t) for choices, t in templates.items() if choices not in self.log_p_cf]
        if not missing:
            return
        prompts = [content_free_prompt(template, text)
                   for _, template in missing for text in self.content_free]
        choices = [options for options, _ in missing for _ in self.content_free]
        rows = super().score_choices(prompts, choices)
        width = len(self.content_free)
        recorded = dict(self.info.get("calibration", {}))  # a copy's info may share the dict
        for n, (options, _) in enumerate(missing):
            log_p_cf = content_free_logprobs(rows[n * width : (n + 1) * width])
            self.log_p_cf[options] = log_p_cf
            recorded[label_key(options)] = [math.exp(p) for p in log_p_cf]
        self.info["calibration"] = recorded

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Calibrated log-probabilities of each choice (renormalised over the item's choices);
        a single choice keeps its summed log-likelihood."""
        scores = super().score_choices(prompts, choices)
        templates: dict[tuple[str, ...], Sequence[Message]] = {}
        for prompt, options in zip(prompts, choices, strict=True):
            if len(options) > 1:
                templates.setdefault(tuple(options), prompt)
        self.estimate(templates)
        return [calibrate(row, self.log_p_cf[tuple(options)]) if len(options) > 1 else row
                for row, options in zip(scores, choices, strict=True)]
