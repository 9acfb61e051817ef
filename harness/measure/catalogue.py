"""The metric catalogue: every metric's direction, unit, headline rank and meaning, in one place.

The recorder reads a metric's direction here (suites pass only name and value), the terminal
summary and the dashboard order their columns by ``headline`` rank, the decision report
compares candidates on the best-ranked metric marked ``decides``, and the ``prepare`` suite
records the ``cost`` entries a candidate's ``info`` carries. Plugins add their own metrics
through the ``register_metrics`` hook (cf. lm-eval's metric registry, which keeps
``higher_is_better`` and the aggregation with each metric's name).

A name ``base[part]`` (per class, per kind, per lm-eval task) is described by the entry of
``base``; lm-eval's filter suffix (``exact_match,strict-match``) by the metric before it; a
mode suffix (``acc_raw``, ``mcnemar_p_prompted``: the forgetting suite's raw-text and
prompted views, :data:`VIEW_SUFFIXES`) by the metric without it, unless it has its own entry.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from harness.core.hookspecs import hookimpl


@dataclass(frozen=True)
class Metric:
    """What one recorded number means."""

    name: str
    higher_is_better: bool | None
    """``None`` for descriptive numbers with no better direction (counts, p-values, codes)."""
    unit: str
    """``share`` (0..1), ``ms``, ``s``, ``bytes``, ``count``, ``nats``, ``price`` ..."""
    description: str
    headline: int | None = None
    """Rank among the metrics shown first (1 first); ``None``: shown only when chosen."""
    cost: bool = False
    """A cost of preparing the candidate, read from ``candidate.info`` by the harness."""
    decides: bool = False
    """The decision report may compare candidates on it (it scores the task's answers)."""


VIEW_SUFFIXES = ("_raw", "_prompted")
"""Suffixes of the forgetting suite's raw-text and prompted views of a metric."""


class UnknownMetricError(ValueError):
    """A metric recorded without a catalogue entry."""


class DuplicateMetricError(ValueError):
    """Two plugins describe the same metric differently."""


def _share(name: str, description: str, higher: bool | None = True, **kw) -> Metric:
    return Metric(name, higher, "share", description, **kw)


def _ms(name: str, description: str, **kw) -> Metric:
    return Metric(name, False, "ms", description, **kw)


def _latency_sample(prefix: str = "", deployment: str = "") -> list[Metric]:
    where = f" ({deployment})" if deployment else ""
    return [
        *(_ms(f"{prefix}latency_p{q}_ms", f"{q}th percentile of batch-1 request latency{where}",
              headline=10 if (q, prefix) == (50, "") else None) for q in (50, 95, 99)),
        _ms(f"{prefix}ttft_ms", f"mean time to the first generated token{where}"),
        _ms(f"{prefix}decode_ms_per_token", f"mean time per generated token after the first"
            f"{where}"),
        Metric(f"{prefix}decode_tokens_per_second", True, "tokens/s",
               f"generated tokens per second after the first{where}"),
        Metric(f"{prefix}batched_requests_per_second", True, "requests/s",
               f"throughput with all requests in one batch{where}"),
    ]


def _variant_ratios(prefix: str, deployment: str) -> list[Metric]:
    """A deployment of the candidate (``merged_``, ``dequantized_``) against the candidate as
    it is, timed interleaved on the same requests (``harness.measure.latency.paired_ratios``)."""
    return [
        Metric(f"{prefix}latency_ratio", False, "ratio", f"mean batch-1 request latency, "
               f"{deployment} / as trained, paired on the same requests (below 1: faster)"),
        Metric(f"{prefix}decode_ratio", False, "ratio", f"mean decode time per token, "
               f"{deployment} / as trained, paired on the same prompts (below 1: faster)"),
    ]


BUILTIN: tuple[Metric, ...] = (
    # accuracy suite
    _share("accuracy", "share of items whose most likely choice is the reference",
           headline=1, decides=True),
    _share("macro_f1", "F1 averaged over labels (choice scoring)", headline=2),
    _share("recall", "recall of one label (choice scoring)"),
    _share("gen_accuracy", "share of free greedy replies the task scores correct",
           headline=3, decides=True),
    _share("gen_unmatched", "share of free replies mapped to no label", higher=False),
    _share("f1", "token F1 of the reply against the reference (SQuAD)", headline=4,
           decides=True),
    _share("exact_match", "share of normalised replies equal to the reference", headline=5,
           decides=True),
    _share("chrf", "chrF of the reply against the reference: F-score of character n-grams "
           "(Popovic 2015; sacrebleu), 0..1", headline=5, decides=True),
    _share("rouge_l", "ROUGE-L F-measure: longest common word subsequence of reply and "
           "reference (Lin 2004; rouge-score)", headline=5, decides=True),
    _share("bleu", "smoothed sentence BLEU of the reply against the reference (sacrebleu), "
           "0..1", decides=True),
    Metric("semantic_similarity", True, "cosine", "cosine similarity of reply and reference "
           "sentence embeddings (all-MiniLM-L6-v2)", headline=5, decides=True),
    Metric("ref_logprob", True, "nats", "mean log-probability per token of the reference "
           "answer as the candidate's reply (no generation; higher: it would have said it)",
           headline=5, decides=True),
    Metric("ref_perplexity", False, "ratio", "perplexity of the reference answers as the "
           "candidate's replies: exp(-ref_logprob)"),
    _share("refused", "share of replies that refuse to answer", higher=None),
    _ms("retrieval_ms", "mean time per request spent retrieving passages"),
    _ms("model_ms", "mean time per request spent in the model (end to end minus phases)"),
    _share("primary_accuracy", "the task's headline score of a side run (--data-sizes, "
           "--label-noise): accuracy, or the graded headline of free text (e.g. f1)"),
    _share("data_efficiency", "headline score (accuracy, or e.g. f1 for free text) when "
           "trained on [n] examples"),
    _share("noise_robustness", "headline score (accuracy, or e.g. f1 for free text) when [p] "
           "of training answers are corrupted"),
    Metric("noise_drop", True, "share", "paired change of the headline score when [p] of "
           "training answers are corrupted (noisy minus clean, same eval items; negative: hurt "
           "by bad labels)"),
    _share("noise_detection_precision", "share of the training items the candidate flags as "
           "mislabelled that were corrupted, when [p] of training answers are corrupted"),
    _share("noise_detection_recall", "share of the corrupted training items the candidate "
           "flags as mislabelled, when [p] of training answers are corrupted"),
    Metric("tied_items", False, "count", "choice-scored items whose best choices scored exactly "
           "the same (broken by a hash of the item id, never by the choices' order)"),
    # data-quality suite (per candidate)
    Metric("suspect_labels", None, "count", "training items whose given answer the candidate "
           "finds least likely (confident learning, Northcutt et al. 2021): labels to review"),
    _share("suspect_label_share", "share of training items flagged as suspect labels",
           higher=None),
    # retrieval suite
    _share("recall_at_k", "share of a question's gold passages among the k retrieved",
           headline=6),
    _share("hit_at_k", "share of questions with a gold passage among the k retrieved"),
    # knowledge-update suite
    _share("old_facts_before", "share answering changed facts with the old value, before"),
    _share("new_facts_after", "share answering with the new facts once documents change",
           headline=7),
    _share("old_facts_after", "share still answering with the old facts after the change",
           higher=False, headline=8),
    Metric("reads_documents", None, "flag", "1 if the candidate answers from documents"),
    # forgetting suite
    _share("probe_accuracy_base", "the base model's accuracy on the general probes"),
    _share("probe_accuracy", "accuracy on the general probes"),
    Metric("forgetting_delta", True, "share", "paired accuracy change on general probes vs "
           "the base model (negative: forgetting)", headline=9),
    Metric("mcnemar_p", None, "p-value", "McNemar exact test of the paired probe change"),
    Metric("items_fixed", True, "count", "probe items the base got wrong and this gets right"),
    Metric("items_broken", False, "count", "probe items the base got right and this gets "
           "wrong"),
    Metric("perplexity", False, "ratio", "perplexity of general text"),
    Metric("perplexity_base", False, "ratio", "the base model's perplexity of general text"),
    Metric("perplexity_delta", False, "ratio", "perplexity change vs the base model"),
    Metric("nll_per_token_delta", False, "nats", "paired change of negative log-likelihood "
           "per token of general text vs the base model (positive: forgetting)", headline=9),
    _share("probe_accuracy_raw", "accuracy on the general probes scored as raw text (no chat "
           "template, lm-eval HFLM style)"),
    Metric("forgetting_delta_raw", True, "share", "paired accuracy change on the general "
           "probes scored as raw text vs the base model (negative: forgetting)"),
    _share("probe_accuracy_prompted", "accuracy on the general probes asked through the "
           "candidate's prompt rewriting (demonstrations, passages)"),
    Metric("interference_delta", True, "share", "paired accuracy change on the general probes "
           "asked through the candidate's prompt rewriting vs the base model (negative: its "
           "prompts interfere with unrelated questions)"),
    _share("acc", "lm-eval: accuracy"),
    _share("acc_norm", "lm-eval: length-normalised accuracy"),
    Metric("mcc", True, "coefficient", "lm-eval: Matthews correlation"),
    Metric("word_perplexity", False, "ratio", "lm-eval: perplexity per word"),
    Metric("byte_perplexity", False, "ratio", "lm-eval: perplexity per byte"),
    Metric("bits_per_byte", False, "bits", "lm-eval: bits per byte"),
    # overfitting suite
    Metric("overfit_verdict", None, "code", "curve reading: -2 no-training, -1 too-short, "
           "0 ok, 1 underfit, 2 overfit", headline=11),
    Metric("final_train_loss", False, "nats", "last training loss"),
    Metric("final_validation_loss", False, "nats", "last validation loss"),
    Metric("best_validation_loss", False, "nats", "lowest validation loss"),
    Metric("gap", None, "nats", "final validation loss minus final training loss"),
    Metric("best_step", None, "step", "step of the lowest validation loss"),
    Metric("final_step", None, "step", "last logged step"),
    Metric("rising_evaluations", None, "count", "validation losses rising at the end"),
    Metric("evaluations", None, "count", "validation evaluations logged"),
    _share("train_accuracy", "headline score (accuracy, or e.g. f1 for free text) on "
           "training items", higher=None),
    _share("eval_accuracy_same_n", "headline score on as many eval items as train_accuracy "
           "used"),
    Metric("train_eval_gap", False, "share", "train_accuracy minus eval_accuracy_same_n"),
    # preferences suite
    _share("preference_accuracy", "share of pairs where the chosen reply is more likely"),
    _share("implicit_reward_accuracy", "share of pairs the DPO implicit reward ranks right"),
    _share("reward_model_accuracy", "share of pairs the carried reward model ranks right"),
    _share("win_rate_vs_base", "judge's win rate of its replies against the base model's"),
    Metric("judge_reward", True, "score", "the rule-based judge's mean score of its replies"),
    Metric("kl_to_base", False, "nats", "KL divergence of its replies from the base model"),
    # judge suite (--judge: a language model grades free replies; MT-Bench protocols)
    Metric("llm_judge_score", True, "score", "the judge's expected 1-5 grade of its replies "
           "against the reference, mapped to 0..1 ((grade - 1) / 4)", decides=True),
    Metric("llm_judge_grade", True, "grade", "the judge's most likely 1-5 grade of its replies "
           "against the reference"),
    _share("llm_judge_win_rate", "share of items where the judge prefers its reply to the "
           "reference in both orders (inconsistent verdicts and ties count half)"),
    _share("llm_judge_position_agreement", "share of items where the judge picks the same "
           "reply in both orders (low: position bias)", higher=None),
    _share("llm_judge_first_preferred", "share of the judge's verdicts picking the reply "
           "shown first (0.5: no position bias)", higher=None),
    _share("llm_judge_longer_preferred", "share of the judge's verdicts picking the longer "
           "reply, on items whose two replies differ in length (length bias)", higher=None),
    # latency suite
    *_latency_sample(),
    *_latency_sample("merged_", "LoRA merged into the weights"),
    *_variant_ratios("merged_", "adapter merged into the weights"),
    *_latency_sample("dequantized_", "4-bit base dequantized"),
    *_variant_ratios("dequantized_", "adapter on the dequantized base"),
    Metric("serving_peak_memory_bytes", False, "bytes", "peak memory while serving"),
    Metric("train_cost", False, "price", "training time x price per hour"),
    Metric("cost_per_1k_requests", False, "price", "serving 1,000 batch-1 requests x price "
           "per hour"),
    # distillation suite: a student against its teacher
    _share("teacher_agreement", "share of eval items where student and teacher give the "
           "same answer"),
    _share("teacher_accuracy", "the teacher's accuracy on the same items", higher=None),
    _share("teacher_gen_accuracy", "the teacher's generation accuracy on the same items",
           higher=None),
    Metric("accuracy_vs_teacher", True, "share", "paired accuracy change vs the teacher "
           "(student minus teacher, same items)"),
    Metric("student_params", None, "count", "parameters of the student"),
    Metric("teacher_params", None, "count", "parameters of the teacher"),
    Metric("size_ratio", False, "ratio", "student parameters / teacher parameters"),
    Metric("student_layers", None, "count", "decoder layers of the student"),
    Metric("teacher_layers", None, "count", "decoder layers of the teacher"),
    Metric("latency_speedup", True, "ratio", "teacher latency p50 / student latency p50 on "
           "the same requests"),
    Metric("decode_speedup", True, "ratio", "teacher decode time per token / student's"),
    Metric("teacher_latency_p50_ms", None, "ms", "the teacher's batch-1 latency p50"),
    Metric("teacher_decode_ms_per_token", None, "ms", "the teacher's decode time per token"),
    Metric("teacher_cost_per_1k_requests", None, "price", "the teacher serving 1,000 "
           "requests at the batched rate x price per hour"),
    # prepare: what building the candidate cost (from candidate.info)
    Metric("prepare_seconds", False, "s", "time to prepare the candidate", cost=True),
    Metric("train_seconds", False, "s", "training time", headline=12, cost=True),
    Metric("train_tokens_per_second", True, "tokens/s", "training throughput", cost=True),
    Metric("trainable_params", None, "count", "parameters updated by training", headline=13,
           cost=True),
    Metric("trainable_percent", None, "percent", "trainable share of all parameters",
           cost=True),
    Metric("artifact_bytes", False, "bytes", "size of what training saved", headline=14,
           cost=True),
    Metric("peak_memory_bytes", False, "bytes", "peak memory while preparing", cost=True),
    Metric("index_seconds", False, "s", "time to build the retrieval index", cost=True),
    Metric("index_bytes", False, "bytes", "size of the retrieval index", cost=True),
    Metric("index_chunks", None, "count", "chunks in the retrieval index", cost=True),
    Metric("teacher_train_seconds", None, "s", "training time of a distilled student's "
           "teacher (0 for one that does not train)", cost=True),
)


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    """The built-in suites' metrics, registered like a plugin's."""
    for metric in BUILTIN:
        register(metric)


class Catalogue:
    """Metrics by name, with lookup of ``base[part]`` and filtered lm-eval names."""

    def __init__(self, metrics: Iterable[Metric] = ()) -> None:
        self._metrics: dict[str, Metric] = {}
        for metric in metrics:
            self.add(metric)

    def add(self, metric: Metric) -> None:
        if not isinstance(metric, Metric):
            raise TypeError(f"register_metrics: expected a harness.Metric, got {metric!r}")
        known = self._metrics.get(metric.name)
        if known is not None and known != metric:
            raise DuplicateMetricError(
                f"two plugins describe the metric {metric.name!r} differently: {known} and "
                f"{metric}; rename one of them")
        self._metrics[metric.name] = metric

    def get(self, name: str) -> Metric | None:
        """The entry describing ``name`` (``None`` if the catalogue has none)."""
        base = name.partition("[")[0]
        found = (self._metrics.get(name) or self._metrics.get(base)
                 or self._metrics.get(base.partition(",")[0]))
        if found is None:
            plain = base.partition(",")[0]
            suffix = next((s for s in VIEW_SUFFIXES if plain.endswith(s)), None)
            if suffix:
                return self.get(plain.removesuffix(suffix))
        return found

    def require(self, name: str) -> Metric:
        """The entry for ``name``; :class:`UnknownMetricError` naming the fix if none."""
        found = self.get(name)
        if found is None:
            close = difflib.get_close_matches(name, self._metrics, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise UnknownMetricError(
                f"metric {name!r} is not in the metric catalogue.{hint} Describe it with "
                "harness.Metric in a register_metrics hook (docs/hooks.md).")
        return found

    def direction(self, name: str) -> bool | None:
        found = self.get(name)
        return None if found is None else found.higher_is_better

    def headline(self) -> list[str]:
        """Names with a headline rank, first rank first."""
        ranked = [m for m in self._metrics.values() if m.headline is not None]
        return [m.name for m in sorted(ranked, key=lambda m: (m.headline, m.name))]

    def rank(self, name: str) -> float:
        """Sort key: the headline rank, after every ranked metric if it has none."""
        found = self.get(name)
        return float("inf") if found is None or found.headline is None else found.headline

    def costs(self) -> list[Metric]:
        return [m for m in self._metrics.values() if m.cost]

    def deciding(self) -> list[str]:
        """Metrics the decision report may compare on, first rank first."""
        return [n for n in self.headline() if self._metrics[n].decides]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._metrics.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None
