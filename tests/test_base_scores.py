"""The base model's scores kept across sessions (harness/measure/base_scores.py): computed once
per key, read back as computed, scored again when the file is damaged. That a runner session
keeps them is tests/test_measurement_suites.py's."""

from __future__ import annotations

import json

import pytest

from harness.measure.base_scores import FOLDER, kept_scores, probe_hash
from harness.tasks.base import Example

KEY = {"model": "tiny-1", "precision": "fp32", "probes": "abc", "mode": "chat"}


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value
    return compute, calls


def test_computed_once_then_read_back_as_computed(tmp_path):
    compute, calls = counting([{"correct": True, "extra": {"lp": -1.25}}, (-3.5, 7)])
    first = kept_scores(KEY, compute, folder=tmp_path)
    second = kept_scores(KEY, compute, folder=tmp_path)
    assert calls == [1] and first == second == [{"correct": True, "extra": {"lp": -1.25}},
                                               [-3.5, 7]]
    other, more = counting([1])
    assert kept_scores({**KEY, "precision": "bf16"}, other, folder=tmp_path) == [1]
    assert more == [1]  # another key: computed
    assert len(list((tmp_path / FOLDER).glob("*.json"))) == 2
    assert not list((tmp_path / FOLDER).glob("*.tmp"))


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_file_is_scored_again_and_replaced(tmp_path, damage):
    compute, calls = counting({"scores": [0.5, 0.25]})
    kept_scores(KEY, compute, folder=tmp_path)
    path = next((tmp_path / FOLDER).glob("*.json"))
    if damage == "tampered":
        saved = json.loads(path.read_text())
        saved["value"]["scores"][0] = 0.75
        path.write_text(json.dumps(saved))
    else:
        path.write_text(path.read_text()[:20])
    with pytest.warns(UserWarning, match="scoring again"):
        assert kept_scores(KEY, compute, folder=tmp_path) == {"scores": [0.5, 0.25]}
    assert calls == [1, 1]
    assert kept_scores(KEY, compute, folder=tmp_path) == {"scores": [0.5, 0.25]}
    assert calls == [1, 1]  # replaced by a good copy


def test_a_probe_set_is_identified_by_its_content():
    items = [Example("q1", ({"role": "user", "content": "2+2?"},), "4", ("3", "4")),
             Example("q2", ({"role": "user", "content": "Capital of France?"},), "Paris",
                     ("Paris", "Rome"))]
    same = probe_hash(items)
    assert probe_hash(list(items)) == same
    assert probe_hash(items[:1]) != same
    changed = [items[0], Example("q2", items[1].messages, "Rome", items[1].choices)]
    assert probe_hash(changed) != same
