"""harness.measure.evaluate: rows shared between suites of one run are computed once."""

from harness.measure.evaluate import scored_once
from harness.tasks.base import Example


def example(i: int) -> Example:
    return Example(id=str(i), messages=({"role": "user", "content": f"q{i}"},), answer="a")


def test_scored_once_computes_each_item_once_per_kind():
    calls: list[list[str]] = []

    def score(items):
        calls.append([e.id for e in items])
        return [{"item_id": e.id, "correct": True} for e in items]

    cache: dict = {}
    first = scored_once(cache, "choice", [example(i) for i in range(5)], score)
    again = scored_once(cache, "choice", [example(i) for i in (3, 1, 7)], score)
    other = scored_once(cache, "generation", [example(1)], score)
    assert [r["item_id"] for r in first] == ["0", "1", "2", "3", "4"]
    assert [r["item_id"] for r in again] == ["3", "1", "7"]  # in the order asked
    assert calls == [["0", "1", "2", "3", "4"], ["7"], ["1"]]
    assert other[0]["item_id"] == "1"
    again[0]["correct"] = False  # a caller's change does not reach the cache
    assert scored_once(cache, "choice", [example(3)], score)[0]["correct"] is True
    assert scored_once(None, "choice", [example(3)], score)[0]["item_id"] == "3"
    assert len(calls) == 4  # no cache: always scored
