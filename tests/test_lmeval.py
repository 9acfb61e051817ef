"""The lm-eval bridge on the tiny in-process model and tiny local task files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from lm_eval.api.instance import Instance
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from harness.core.approach import Candidate
from harness.measure.lmeval import CandidateLM, cut_at_stops, evaluate_tasks
from harness.models.lm_candidate import LMCandidate

DATA = Path(__file__).resolve().parent / "data" / "lmeval"
LONG_TEXT = ("The food was great, the service was slow, the battery died, I loved it, never "
             "again. Positive negative review hotel app screen room staff waiter price quality.")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def candidate(tiny_lm):
    model, tokenizer = tiny_lm
    return LMCandidate(model, tokenizer)


def local_task(name: str, tmp_path: Path) -> Path:
    """The fixture task YAML with its data file made absolute and a private datasets cache
    (``datasets`` resolves relative ``data_files`` against the working directory)."""
    config = yaml.safe_load((DATA / f"{name}.yaml").read_text())
    kwargs = config["dataset_kwargs"]
    kwargs["data_files"] = {split: str(DATA / Path(file).name)
                            for split, file in kwargs["data_files"].items()}
    kwargs["cache_dir"] = str(tmp_path / "datasets-cache")
    path = tmp_path / "tasks" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def docs(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines()]


def request(kind: str, *args) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=tuple(args), idx=0)


class Recorder(Candidate):
    """A candidate without a model: scores a choice by minus its length, records calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list, list]] = []

    def generate(self, prompts, max_new_tokens=32):
        return ["yes. no" for _ in prompts]

    def score_choices(self, prompts, choices):
        self.calls.append((list(prompts), [list(c) for c in choices]))
        return [[-float(len(c)) for c in row] for row in choices]


def test_multiple_choice_task_agrees_with_score_choices(candidate, tmp_path):
    results = evaluate_tasks(candidate, [str(local_task("tiny_mc", tmp_path))])
    result = results["tunebench_tiny_mc"]
    assert 0.0 <= result.metrics["acc"] <= 1.0 and "acc_stderr" in result.metrics
    assert [item["item_id"] for item in result.items] == [str(i) for i in range(6)]

    # The same prompts scored directly: lm-eval's context as one user turn, the choices as
    # the reply (lm-eval's " " target delimiter stripped).
    template = yaml.safe_load((DATA / "tiny_mc.yaml").read_text())["doc_to_text"]
    rows = docs("tiny_mc")
    contexts = [template.replace("{{review}}", row["review"]) for row in rows]
    scores = candidate.score_choices([[{"role": "user", "content": c}] for c in contexts],
                                     [row["choices"] for row in rows])
    best = [max(range(len(s)), key=s.__getitem__) for s in scores]
    assert result.metrics["acc"] == pytest.approx(
        sum(b == row["label"] for b, row in zip(best, rows, strict=True)) / len(rows))
    for item, context, row, choice, row_scores in zip(
            result.items, contexts, rows, best, scores, strict=True):
        assert item["prompt"] == context
        assert item["reference"] == str(row["label"])
        assert item["prediction"] == str(choice)
        assert item["correct"] is (choice == row["label"])
        assert item["extra"]["acc"] == float(choice == row["label"])
        assert item["extra"]["choice_logprobs"] == pytest.approx(row_scores, abs=1e-4)


def test_generation_task_returns_text_predictions(candidate, tmp_path):
    result = evaluate_tasks(candidate, [str(local_task("tiny_gen", tmp_path))],
                            limit=3)["tunebench_tiny_gen"]
    assert 0.0 <= result.metrics["exact_match"] <= 1.0
    assert [item["reference"] for item in result.items] == [r["answer"] for r in docs("tiny_gen")]
    for item in result.items:
        assert isinstance(item["prediction"], str)
        assert "\n" not in item["prediction"] and "." not in item["prediction"]  # until
        assert isinstance(item["correct"], bool)
        assert item["extra"]["exact_match"] == float(item["correct"])


def test_generate_until_cuts_at_the_first_stop_string(candidate):
    lm = CandidateLM(candidate)
    contexts = ["Review: the food was great", "Review: never again, the battery died"]
    free = lm.generate_until([request("generate_until", c, {"max_gen_toks": 12})
                              for c in contexts])
    assert free == candidate.generate([[{"role": "user", "content": c}] for c in contexts], 12)
    stops = [text[len(text) // 2 : len(text) // 2 + 1] for text in free]
    assert all(stops), free
    cut = lm.generate_until([
        request("generate_until", c, {"until": ["\x00never", stop], "max_gen_toks": 12})
        for c, stop in zip(contexts, stops, strict=True)])
    for text, stop, short in zip(free, stops, cut, strict=True):
        assert stop not in short
        assert short == text[: text.index(stop)]
    assert cut_at_stops("a.b\nc", ["\n", "."]) == "a" and cut_at_stops("abc", []) == "abc"


def test_sampling_requests_warn_once_and_stay_greedy():
    lm = CandidateLM(Recorder())
    sampled = [request("generate_until", "Q", {"do_sample": True, "until": "."}),
               request("generate_until", "Q", {"temperature": 0.7})]
    with pytest.warns(UserWarning, match="greedily") as caught:
        assert lm.generate_until(sampled) == ["yes", "yes. no"]
    assert len(caught) == 1


def test_chat_loglikelihood_scores_a_document_in_one_call():
    recorder = Recorder()
    lm = CandidateLM(recorder)
    requests = [request("loglikelihood", "Q1 ", " yes"), request("loglikelihood", "Q2", " maybe"),
                request("loglikelihood", "Q1", " no way"), request("loglikelihood", "Q2", "")]
    assert lm.loglikelihood(requests) == [(-3.0, False), (-5.0, False), (-6.0, False),
                                          (0.0, False)]
    assert recorder.calls == [([[{"role": "user", "content": "Q1"}],
                                [{"role": "user", "content": "Q2"}]],
                               [["yes", "no way"], ["maybe"]])]


def test_rolling_loglikelihood_equals_a_plain_forward_pass(candidate):
    model, tokenizer = candidate.model, candidate.tokenizer
    texts = ["The food was great, the service was slow.", "never again", ""]
    for text, (total, count) in zip(texts, candidate.loglikelihood_rolling(texts), strict=True):
        tokens = tokenizer(text, add_special_tokens=False).input_ids
        assert count == len(tokens)
        ids = torch.tensor([[tokenizer.bos_token_id, *tokens]])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        expected = sum(logprobs[t, token].item() for t, token in enumerate(tokens))
        assert total == pytest.approx(expected, abs=1e-3)
    lm = CandidateLM(candidate)
    rolled = lm.loglikelihood_rolling([request("loglikelihood_rolling", t) for t in texts])
    assert rolled == pytest.approx([t for t, _ in candidate.loglikelihood_rolling(texts)])


def test_rolling_windows_longer_texts_like_lm_eval(tiny_lm):
    model, tokenizer = tiny_lm
    windowed = LMCandidate(model, tokenizer, max_length=8)
    tokens = tokenizer(LONG_TEXT, add_special_tokens=False).input_ids
    assert len(tokens) > 3 * 8
    [(total, count)] = windowed.loglikelihood_rolling([LONG_TEXT])
    assert count == len(tokens) and math.isfinite(total)
    # lm-eval HFLM's windows, each scored on its own: inputs of at most 8 tokens.
    expected = 0.0
    for context, targets in map(make_disjoint_window, get_rolling_token_windows(
            tokens, tokenizer.bos_token_id, max_seq_len=8, context_len=1)):
        inputs = (context + targets)[-9:][:-1]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([inputs])).logits[0].float(), -1)
        expected += sum(logprobs[len(inputs) - len(targets) + k, token].item()
                        for k, token in enumerate(targets))
    assert total == pytest.approx(expected, abs=1e-3)


def test_raw_mode_scores_plain_text_like_hflm(candidate):
    model, tokenizer = candidate.model, candidate.tokenizer
    lm = CandidateLM(candidate, mode="raw")
    pairs = [("Review: great food\nAnswer:", " positive"), ("", "negative review")]
    scores = lm.loglikelihood([request("loglikelihood", *pair) for pair in pairs])
    for (context, continuation), (logprob, greedy) in zip(pairs, scores, strict=True):
        start = tokenizer(context).input_ids if context else [tokenizer.bos_token_id]
        whole = (tokenizer(context + continuation).input_ids if context
                 else start + tokenizer(continuation).input_ids)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
        expected = sum(logprobs[t - 1, whole[t]].item() for t in range(len(start), len(whole)))
        assert logprob == pytest.approx(expected, abs=1e-3)
        assert isinstance(greedy, bool)


def test_candidate_without_a_model_says_so(tmp_path):
    with pytest.raises(NotImplementedError, match="Recorder has no language model"):
        Recorder().loglikelihood_rolling(["some text"])
    with pytest.raises(NotImplementedError, match=r"Recorder has no language model.*chat"):
        CandidateLM(Recorder(), mode="raw")
    with pytest.raises(NotImplementedError, match="Recorder has no language model"):
        evaluate_tasks(Recorder(), [str(tmp_path / "never-read.yaml")], mode="raw")
    with pytest.raises(ValueError, match="mode must be one of"):
        CandidateLM(Recorder(), mode="html")


@pytest.mark.slow  # indexes lm-eval's whole task registry
def test_unknown_tasks_are_refused_with_suggestions(candidate, tmp_path):
    with pytest.raises(ValueError, match=r"did you mean.*hellaswag"):
        evaluate_tasks(candidate, ["hellaswg"])
    with pytest.raises(ValueError, match="no such task YAML"):
        evaluate_tasks(candidate, [str(tmp_path / "missing.yaml")])
