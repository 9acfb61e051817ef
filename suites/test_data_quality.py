"""The data check: is the task's data good enough to fine-tune on, and to measure with?

Run it before training, on your own data or a built-in task::

    pytest suites/test_data_quality.py --task=PATH

Each test runs one check of :mod:`harness.data.quality` on all of the task's data (every
split whole, not cut to the budget), stores its finding (a count, a summary naming the rule,
up to 20 example rows with their file:line) in the results file's ``data_findings`` table,
shown by the dashboard's "Data check" page, and warns (:class:`DataWarning`) when it found
something, so pytest's warnings summary lists what to review. A finding fails no test: the
tests assert that the check's report is consistent, the data is yours to judge.

- duplicates: items of a split whose prompt is the same after normalising case, punctuation and
  spaces, with the same answer (``duplicate_items``) or another one (``conflicting_labels``);
- near duplicates: train prompts nearly repeating another (Jaccard >= 0.8 over word 3-grams,
  MinHash LSH as in Lee et al. 2022), which weigh the same example several times;
- train/eval overlap, exact and near: eval items whose prompt occurs in, or nearly matches,
  train or validation; their scores measure memory, not generalisation;
- label balance (classification): labels with few train items (share below 1/(4 x labels) or
  fewer than 5), and the largest over the smallest label count;
- answer length outliers (open answers): answers whose length in words is "far out" by
  Tukey's fences (Q1 - 3 IQR, Q3 + 3 IQR), often a pasted document or a truncated one;
- truncated prompts: train items longer than the training ``max_length`` in the base model's
  chat template (the smallest max_length of the session's training approaches, default 256):
  a prompt that fills it leaves nothing of the reply to learn, a longer reply loses its end.

The checks that need no tokenizer also run, and are stored, at the start of every session on a
data file; the session header lists what they found.

These tests belong to no matrix cell: they take the session (``tunebench``) and its data
(``session_data``), never a candidate, and run once per session. One more, per candidate:

- suspect labels: the training items (of the budget's sample) whose given answer the candidate
  finds least likely, by confident learning (Northcutt et al. 2021, with ``cleanlab``), stored
  as the candidate's ``suspect_labels`` metric and a table with each item's file:line.
"""

import warnings

import pytest

from harness.data.errors import DataWarning
from harness.data.quality import (
    Finding,
    answer_length_outliers,
    duplicates,
    label_balance,
    near_duplicates,
    store_findings,
    train_eval_near_overlap,
    train_eval_overlap,
    truncated_prompts,
)
from harness.data.similarity import PromptIndex
from harness.measure.label_issues import find_suspect_labels
from harness.measure.metrics import accuracy
from harness.train.sft import TrainingConfig


@pytest.fixture(scope="session")
def session_data_hash(session_data) -> str:
    """The data hash of ``session_data``, computed once for every finding stored on it."""
    return session_data.fingerprint()


def report(tunebench, data, finding: Finding, data_hash: str) -> None:
    """Store ``finding``, warn if it found something, and check that it is consistent."""
    store_findings(tunebench.store, tunebench.options.session, data, [finding], data_hash)
    if finding.is_problem:
        first = ", ".join(str(row["source"]) for row in finding.rows[:3])
        warnings.warn(f"{finding.name} = {finding.count}: {finding.summary} (first: {first}); "
                      "see the tables: pytest suites/test_data_quality.py "
                      f"--task={tunebench.options.task}", DataWarning, stacklevel=2)
    assert finding.count >= 0
    assert finding.count >= len(finding.rows)
    assert finding.summary
    assert (finding.count == 0) == (not finding.rows) or finding.value is not None
    assert all(row.get("source") and row.get("split") for row in finding.rows)


@pytest.fixture(scope="module")
def prompt_index(session_data) -> PromptIndex:
    """The prompts hashed once for both near-duplicate checks."""
    return PromptIndex(session_data)


def training_max_length(tunebench) -> int:
    """The smallest ``max_length`` of the session's approaches that train (each part of a
    composition, each sweep point), else training's default."""
    lengths = []
    for cell in tunebench.cells:
        approach = tunebench.make_approach(cell.approach, cell.point)
        for part in getattr(approach, "parts", [approach]):
            if isinstance(part.config, TrainingConfig):
                lengths.append(part.config.max_length)
    return min(lengths, default=TrainingConfig().max_length)


@pytest.fixture(scope="module")
def base_tokenizer(tunebench):
    """The base model's tokenizer: the shared base's if it is loaded, else the tokenizer
    alone (no weights)."""
    if "shared_base" in vars(tunebench):
        return tunebench.shared_base[1]
    from transformers import AutoTokenizer

    spec = tunebench.base_model
    return AutoTokenizer.from_pretrained(spec.source, trust_remote_code=spec.trust_remote_code)


def test_duplicates(tunebench, session_data, session_data_hash):
    for finding in duplicates(session_data):
        report(tunebench, session_data, finding, session_data_hash)
        assert all(row["matches"] != row["source"] for row in finding.rows)


def test_near_duplicates(tunebench, session_data, prompt_index, session_data_hash):
    finding = near_duplicates(session_data, prompt_index)
    report(tunebench, session_data, finding, session_data_hash)
    assert all(float(row["why"].split()[-1]) >= 0.8 for row in finding.rows)


def test_train_eval_overlap(tunebench, session_data, session_data_hash):
    finding = train_eval_overlap(session_data)
    report(tunebench, session_data, finding, session_data_hash)
    assert all(row["split"] == "eval" for row in finding.rows)


def test_train_eval_near_overlap(tunebench, session_data, prompt_index, session_data_hash):
    finding = train_eval_near_overlap(session_data, prompt_index)
    report(tunebench, session_data, finding, session_data_hash)
    assert all(row["split"] == "eval" for row in finding.rows)


def test_label_balance(tunebench, session_data, session_data_hash):
    findings = label_balance(session_data)
    if not findings:
        pytest.skip(f"task {session_data.name!r} is not scored as classification: no labels")
    for finding in findings:
        report(tunebench, session_data, finding, session_data_hash)
    rare, imbalance = findings
    assert all(row["label"] in rare.summary for row in rare.rows[:5])
    assert imbalance.value is not None and imbalance.value >= 1
    assert imbalance.count == len(session_data.train)


def test_answer_length_outliers(tunebench, session_data, session_data_hash):
    finding = answer_length_outliers(session_data)
    if finding is None:
        pytest.skip(f"task {session_data.name!r} is classification: its answers are labels")
    report(tunebench, session_data, finding, session_data_hash)


def test_truncated_prompts(tunebench, session_data, base_tokenizer, session_data_hash):
    max_length = training_max_length(tunebench)
    finding = truncated_prompts(session_data, base_tokenizer, max_length)
    report(tunebench, session_data, finding, session_data_hash)
    assert all(row["tokens"] > max_length for row in finding.rows)


SUSPECTS_STORED = 50
"""Suspect labels stored per candidate, least likely first."""


def test_suspect_labels(cell, candidate, tunebench, task_data, record, run_seed):
    """The training items whose given answer the candidate finds least likely (confident
    learning, :mod:`harness.measure.label_issues`), with their file:line, to review. A
    candidate trained on these items has seen their answers (``in_sample``): prompting
    candidates give the out-of-sample view confident learning assumes."""
    items = [e for e in task_data.train if e.rejected is None]
    if not items:
        pytest.skip(f"task {task_data.name!r} has no labelled training items to check")
    try:
        suspects = find_suspect_labels(candidate, items)
    except ValueError as error:
        pytest.skip(f"suspect labels not looked for: {error}")
    flagged = {s.item_id for s in suspects}
    in_sample = tunebench.trains(cell.approach)
    record.metric("suspect_labels", len(suspects), scored=len(items), in_sample=in_sample)
    record.metric("suspect_label_share", accuracy([e.id in flagged for e in items],
                                                  seed=run_seed), in_sample=in_sample)
    record.examples([s.row() for s in suspects[:SUSPECTS_STORED]], part="suspect_labels")
    if suspects:
        first = ", ".join(s.source for s in suspects[:3])
        warnings.warn(f"{cell.approach} finds {len(suspects)} of {len(items)} training answers "
                      f"unlikely (first: {first}); review them in the dashboard's Data check "
                      "page", DataWarning, stacklevel=1)

    assert len(flagged) == len(suspects) <= len(items)
    assert [s.rank for s in suspects] == list(range(1, len(suspects) + 1))
