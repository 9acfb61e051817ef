"""Zero-shot and few-shot approaches."""

from collections import Counter

from harness.tasks.base import Example
from plugins.prompting import pick_demonstrations


def examples(n=40):
    return [
        Example(id=str(i), messages=({"role": "user", "content": f"r{i}"},),
                answer="positive" if i % 4 == 0 else "negative", choices=("negative", "positive"))
        for i in range(n)
    ]


def test_demonstrations_are_seeded_and_label_balanced():
    train = examples()
    first = pick_demonstrations(train, 4, seed=0, balanced=True)
    assert [e.id for e in first] == [e.id for e in pick_demonstrations(train, 4, 0, True)]
    assert [e.id for e in first] != [e.id for e in pick_demonstrations(train, 4, 1, True)]
    assert Counter(e.answer for e in first) == {"positive": 2, "negative": 2}


def test_unbalanced_draw_follows_the_data():
    picked = pick_demonstrations(examples(), 8, seed=0, balanced=False)
    assert len(picked) == len({e.id for e in picked}) == 8


def test_k_larger_than_train_takes_everything():
    assert len(pick_demonstrations(examples(3), 10, seed=0, balanced=True)) == 3
