"""Tests for the postal-address normalisation task (harness/tasks/addresses/)."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.tasks.addresses import bank
from harness.tasks.addresses.task import (
    INSTRUCTION,
    KINDS,
    SYSTEM,
    TEMPLATE_SIDES,
    Address,
    AddressesTask,
    render,
)
from harness.tasks.base import Example, TaskData, normalize_text
from harness.tasks.qa import token_f1
from tests.conftest import query_db, run_suites

SPLITS = ("train", "validation", "eval")
_NAME = r"[A-Z][a-z]+(?: [A-Z][a-z]+)*"
_TYPES = "|".join(full for _, full in bank.STREET_TYPES)
_DIRECTIONS = "|".join(full for _, full in bank.DIRECTIONS)
CANONICAL = re.compile(
    rf"^[1-9]\d{{0,3}} (?:(?:{_DIRECTIONS}) )?{_NAME} (?:{_TYPES})"
    rf"(?:, (?:Apt|Suite) [1-9]\d{{0,2}})?, {_NAME}, (?P<state>[A-Z]{{2}}) \d{{5}}$"
)
"""``NUMBER [Direction] Name Type[, Apt N | Suite N], City, ST ZIP``."""


@pytest.fixture(scope="module")
def data() -> TaskData:
    return AddressesTask().load(seed=0)


def address_text(example: Example) -> str:
    """The messy address inside the user message."""
    return example.messages[-1]["content"].split("\n\nAddress: ", 1)[1]


def everything(data: TaskData) -> list[Example]:
    return [e for split in SPLITS for e in getattr(data, split)]


def test_task_is_registered() -> None:
    from harness.core.plugins import tasks

    assert tasks().get("addresses") is AddressesTask
    assert AddressesTask.description and "\n" not in AddressesTask.description


def test_split_sizes_and_open_answers(data: TaskData) -> None:
    assert (len(data.train), len(data.validation), len(data.eval)) == (2400, 200, 600)
    assert data.labels == () and data.corpus == []
    for example in everything(data):
        assert example.choices == () and example.rejected is None
    ids = [e.id for e in everything(data)]
    assert len(ids) == len(set(ids))


def test_same_seed_same_data_other_seed_other_data(data: TaskData) -> None:
    started = time.perf_counter()
    again = AddressesTask().load(seed=0)
    assert time.perf_counter() - started < 1.0
    assert again.fingerprint() == data.fingerprint()
    assert [e.meta for e in again.eval] == [e.meta for e in data.eval]
    other = AddressesTask().load(seed=1)
    assert other.fingerprint() != data.fingerprint()
    assert len({e.answer for e in other.eval} & {e.answer for e in data.eval}) < 10


def test_held_out_templates_never_in_train_or_validation(data: TaskData) -> None:
    held_out = {t.id for i, t in enumerate(bank.TEMPLATES) if i % 3 == 2}
    assert {t.id for t in TEMPLATE_SIDES["eval"]} == held_out and len(held_out) == 6
    seen = {t.id for t in TEMPLATE_SIDES["train"]}
    assert not seen & held_out and len(seen) == 12
    for split in ("train", "validation"):
        items = getattr(data, split)
        assert {e.meta["template"] for e in items} == seen
        assert {e.meta["kind"] for e in items} == {"seen-template"}
    by_kind = {kind: {e.meta["template"] for e in data.eval if e.meta["kind"] == kind}
               for kind in KINDS}
    assert by_kind == {"seen-template": seen, "held-out-template": held_out}


def test_no_prompt_or_address_in_two_splits(data: TaskData) -> None:
    prompts = {s: [normalize_text(e.prompt_text) for e in getattr(data, s)] for s in SPLITS}
    answers = [e.answer for e in everything(data)]
    assert len(answers) == len(set(answers))
    for split, items in prompts.items():
        assert len(items) == len(set(items)), f"a prompt occurs twice in {split}"
    assert not set(prompts["train"]) & set(prompts["validation"])
    assert not set(prompts["train"]) & set(prompts["eval"])
    assert not set(prompts["validation"]) & set(prompts["eval"])


def test_every_answer_is_canonical_and_follows_from_its_input(data: TaskData) -> None:
    codes = {code for code, _ in bank.STATES}
    for example in everything(data):
        match = CANONICAL.match(example.answer)
        assert match, example.answer
        assert match["state"] in codes
        text = address_text(example)
        assert text != example.answer
        number = example.answer.split(" ", 1)[0]
        zip_code = example.answer.rsplit(" ", 1)[1]
        city = example.answer.split(", ")[-2]
        flat = " ".join(text.lower().split())
        assert re.search(rf"(?<!\d){number}(?!\d)", text) and zip_code in text, text
        assert city.lower() in flat, text


def test_canonical_line_and_renderings_of_one_address() -> None:
    address = Address("12", None, "Baker", ("St", "Street"), ("Apt", "4"), "Springfield",
                      ("IL", "Illinois"), "62704")
    assert address.canonical() == "12 Baker Street, Apt 4, Springfield, IL 62704"
    suite = Address("7", ("N", "North"), "Old Quarry", ("Blvd", "Boulevard"), ("Suite", "310"),
                    "Port Larkdale", ("NY", "New York"), "01234")
    assert suite.canonical() == "7 North Old Quarry Boulevard, Suite 310, Port Larkdale, NY 01234"
    no_unit = Address("9", None, "Sorrel", ("Ln", "Lane"), None, "Wrenmoor", ("TX", "Texas"),
                      "75001")
    rng = random.Random(0)
    for template in bank.TEMPLATES:
        text = render(address, template, rng)
        assert re.search(r"(?i)\b(apt\.?|apartment|unit)\s+4\b|#\s*4\b", text), (template.id, text)
        assert re.search(r"(?i)\b(il|illinois)\b", text) and "62704" in text
        bare = render(no_unit, template, rng)
        assert not re.search(r"(?i)unit|\[|\]", bare), (template.id, bare)
    assert render(address, bank.TEMPLATES[0], rng).islower()  # run-on-lower
    upper_commas = render(address, bank.TEMPLATES[1], rng)
    assert re.fullmatch(r"12 BAKER ST, (APT\.? |APARTMENT |UNIT |# ?)4, SPRINGFIELD, "
                        r"(IL|ILLINOIS) 62704", upper_commas), upper_commas


def test_inputs_carry_every_kind_of_mess(data: TaskData) -> None:
    inputs = [address_text(e) for e in data.train]
    marks = {
        "lower case": lambda t: t.islower(), "upper case": lambda t: t.isupper(),
        "line breaks": lambda t: "\n" in t, "tabs": lambda t: "\t" in t,
        "double spaces": lambda t: "  " in t, "hash unit": lambda t: "#" in t,
        "unit word": lambda t: " unit " in t.lower(),
        "apartment": lambda t: "apartment" in t.lower(),
        "suite abbreviation": lambda t: "ste" in t.lower().split(),
        "dotted type": lambda t: re.search(r"(?i)\b(st|ave|rd|blvd)\.", t) is not None,
        "state name": lambda t: any(name in t for _, name in bank.STATES),
        "labelled fields": lambda t: "city=" in t or "City:" in t,
        "no commas": lambda t: "," not in t,
    }
    missing = [mark for mark, found in marks.items() if not any(found(t) for t in inputs)]
    assert missing == []


def test_kinds_balanced_in_eval_and_its_prefixes(data: TaskData) -> None:
    assert Counter(e.meta["kind"] for e in data.eval) == {k: 300 for k in KINDS}
    for n in (40, 100, 500):
        counts = Counter(e.meta["kind"] for e in data.eval[:n])
        assert counts == {k: n // 2 for k in KINDS}, n
    templates = Counter(e.meta["template"] for e in data.eval[:500])
    assert len(templates) == 18 and min(templates.values()) >= 15


def test_messages_and_default_scoring(data: TaskData) -> None:
    task = AddressesTask()
    for example in everything(data):
        system, user = example.messages
        assert system == {"role": "system", "content": SYSTEM}
        assert user["role"] == "user" and user["content"].startswith(INSTRUCTION)
    example = data.eval[0]
    assert task.score_generation(example.answer, example) == (example.answer, True)
    assert task.score_generation(f" {example.answer.upper()} ", example)[1]
    near_miss = example.answer[: -len("XX 00000")] + "ZZ " + example.answer[-5:]
    assert not task.score_generation(near_miss, example)[1]
    assert token_f1(near_miss, example.answer) > 0.8  # partial credit for the text metrics


def test_longest_answer_fits_max_new_tokens(data: TaskData) -> None:
    """Two tokens per word or punctuation mark is an upper bound for these answers (measured
    with SmolLM2's tokenizer: at most 31 tokens)."""
    pieces = max(len(re.findall(r"\w+|[^\w\s]", e.answer)) for e in everything(data))
    assert 2 * pieces <= AddressesTask.max_new_tokens


@pytest.mark.slow
def test_smoke_run_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    result = run_suites(["--task=addresses", "--approach=zero-shot", "--budget=smoke",
                         f"--model={tiny_model_dir}", "--results", str(db)],
                        tmp_path, suites=["test_accuracy.py"], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = query_db(db, "SELECT id, task, status FROM runs")
    assert [(r["task"], r["status"]) for r in runs] == [("addresses", "finished")]
    metrics = {r["name"]: r for r in query_db(db, "SELECT * FROM metrics WHERE run_id = ?",
                                               runs[0]["id"])}
    assert "gen_accuracy" in metrics and metrics["gen_accuracy"]["n"] == 40
    assert {"gen_accuracy[seen-template]", "gen_accuracy[held-out-template]"} <= set(metrics)
    rows = query_db(db, "SELECT * FROM examples WHERE suite = 'accuracy.generation'")
    assert len(rows) == 40
    extras = [json.loads(r["extra_json"]) for r in rows]
    assert Counter(x["kind"] for x in extras) == {k: 20 for k in KINDS}
    assert all(CANONICAL.match(r["reference"]) for r in rows)
