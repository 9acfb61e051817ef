"""The data check (``harness.data.quality``, ``suites/test_data_quality.py``): each check finds
what was planted, with its source, and nothing on clean data; the built-in sentiment task keeps
its promise of unique texts; the findings reach the results file, the session header and
pytest's warnings summary; the results file and the dashboard's reader cope with files older
than the findings table."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from harness.data.quality import (
    answer_length_outliers,
    cheap_findings,
    duplicates,
    header_lines,
    label_balance,
    near_duplicates,
    store_findings,
    train_eval_near_overlap,
    train_eval_overlap,
    truncated_prompts,
)
from harness.runner.store import SCHEMA_VERSION, Store, check_results_file, open_read_only
from harness.tasks import resolve_task
from harness.tasks.base import Example, TaskData
from reports.data import data_findings
from tests.conftest import query_db, run_suites

VOCABULARY = [f"word{i}" for i in range(400)]


def sentence(rng: random.Random, words: int = 15) -> str:
    return " ".join(rng.sample(VOCABULARY, words))


def item(line: int, text: str, answer: str, choices: tuple[str, ...] = ()) -> Example:
    return Example(id=f"i{line}", messages=({"role": "user", "content": text},), answer=answer,
                   choices=choices, meta={"source": f"data.jsonl:{line}"})


def clean_items(start: int, count: int, seed: int = 0) -> list[Example]:
    """Prompts of 15 words drawn from 400 (no two share a 3-gram) with 2-4 word answers."""
    rng = random.Random(seed)
    return [item(start + k, sentence(rng), sentence(rng, rng.randint(2, 4)))
            for k in range(count)]


def task(train, validation=(), eval=(), labels=()) -> TaskData:
    return TaskData("planted", list(train), list(validation), list(eval), labels=tuple(labels))


def by_name(findings):
    return {f.name: f for f in findings}


def test_clean_data_has_no_findings():
    data = task(clean_items(1, 60), clean_items(100, 10, seed=1), clean_items(200, 20, seed=2))
    found = by_name(cheap_findings(data))
    assert set(found) == {"duplicate_items", "conflicting_labels", "near_duplicates",
                          "train_eval_overlap", "train_eval_near_overlap",
                          "answer_length_outliers"}  # no labels: no balance checks
    assert {name: f.count for name, f in found.items()} == dict.fromkeys(found, 0)
    assert all(not f.rows for f in found.values())
    assert header_lines(list(found.values()), "data.jsonl")[0].startswith(
        "tunebench data check: nothing found")


def test_normalised_duplicates_and_conflicting_labels_are_found_per_split():
    train = clean_items(1, 20)
    train += [item(21, "What is the capital of France?", "Paris"),
              item(22, "what is the capital of  FRANCE", "Paris"),
              item(23, "What is the capital of France!", "Lyon")]
    validation = [item(30, "what is the capital of france", "Paris")]  # other split: fine
    dup, conflict = duplicates(task(train, validation))
    assert (dup.name, dup.count, conflict.name, conflict.count) == (
        "duplicate_items", 1, "conflicting_labels", 1)
    assert (dup.rows[0]["source"], dup.rows[0]["matches"]) == ("data.jsonl:22", "data.jsonl:21")
    assert (conflict.rows[0]["source"], conflict.rows[0]["matches"]) == (
        "data.jsonl:23", "data.jsonl:21")
    assert "'Paris' there" in conflict.rows[0]["why"] and conflict.rows[0]["answer"] == "Lyon"
    assert dup.split == conflict.split == "train"


def test_a_word_changed_in_a_15_word_prompt_is_a_near_duplicate():
    rng = random.Random(5)
    words = sentence(rng).split()
    changed = " ".join([*words[:-1], "different"])  # 12 of 14 3-grams shared: Jaccard 0.857
    train = [*clean_items(1, 40), item(41, " ".join(words), "a b"), item(42, changed, "c d"),
             item(43, " ".join(words).upper(), "a b")]  # exact after normalising: not near
    finding = near_duplicates(task(train))
    assert finding.count == 1
    assert (finding.rows[0]["source"], finding.rows[0]["matches"]) == (
        "data.jsonl:42", "data.jsonl:41")
    assert finding.rows[0]["why"] == "Jaccard 0.86"
    assert "Jaccard >= 0.8" in finding.summary


def test_a_shared_instruction_does_not_make_items_near_duplicates():
    instruction = "Read the following customer message carefully and answer the question " \
                  "about it with a short phrase taken from the message itself. Message:"
    rng = random.Random(3)
    train = [item(k, f"{instruction} {sentence(rng, 4)}", "x y") for k in range(1, 30)]
    assert near_duplicates(task(train)).count == 0


def test_eval_prompts_found_in_train_or_validation_exactly_or_nearly():
    rng = random.Random(9)
    train, validation = clean_items(1, 30), clean_items(50, 5, seed=4)
    near = train[3].prompt_text.rsplit(" ", 1)[0] + " elsewhere"
    eval_items = [*clean_items(100, 10, seed=7),
                  item(120, validation[2].prompt_text.lower() + "?", "q r"),  # exact
                  item(121, near, "s t"),  # near
                  item(122, sentence(rng), "u v")]
    data = task(train, validation, eval_items)
    exact, nearly = train_eval_overlap(data), train_eval_near_overlap(data)
    assert exact.count == 1 and exact.rows[0]["source"] == "data.jsonl:120"
    assert exact.rows[0]["matches"] == "validation data.jsonl:52"
    assert nearly.count == 1 and nearly.rows[0]["source"] == "data.jsonl:121"
    assert nearly.rows[0]["matches"] == "train data.jsonl:4"
    assert exact.split == nearly.split == "eval"


def test_a_rare_label_and_the_imbalance():
    labels = ("cat", "dog", "eel")
    rng = random.Random(2)
    answers = ["cat"] * 40 + ["dog"] * 40 + ["eel"] * 3
    train = [item(k + 1, sentence(rng), a, labels) for k, a in enumerate(answers)]
    rare, imbalance = label_balance(task(train, labels=labels))
    assert rare.count == 1 and rare.rows[0]["label"] == "eel" and rare.rows[0]["count"] == 3
    assert rare.rows[0]["source"] == "data.jsonl:81, data.jsonl:82, data.jsonl:83"
    assert imbalance.value == pytest.approx(40 / 3) and imbalance.count == 83
    assert not imbalance.is_problem  # a ratio, not a count of things to review
    balanced = [item(k + 1, sentence(rng), labels[k % 3], labels) for k in range(60)]
    assert label_balance(task(balanced, labels=labels))[0].count == 0
    assert answer_length_outliers(task(balanced, labels=labels)) is None  # labels
    assert label_balance(task(clean_items(1, 10))) == []  # open answers


def test_an_answer_length_outlier():
    rng = random.Random(4)
    train = [*clean_items(1, 40), item(41, sentence(rng), sentence(rng, 80))]
    finding = answer_length_outliers(task(train))
    assert finding.count == 1 and finding.rows[0]["source"] == "data.jsonl:41"
    assert finding.rows[0]["why"].startswith("80 words; fences [")
    assert answer_length_outliers(task(clean_items(1, 40))).count == 0


def test_prompts_longer_than_max_length_in_the_chat_template(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rng = random.Random(8)
    train = [*clean_items(1, 5),
             item(6, sentence(rng, 300), "short"),  # the prompt alone fills max_length
             item(7, "Short question?", sentence(rng, 300))]  # the reply is cut
    finding = truncated_prompts(task(train), tokenizer, 128)
    assert finding.count == 2
    assert [(r["source"], r["why"].split(":")[0]) for r in finding.rows] == [
        ("data.jsonl:6", "reply lost"), ("data.jsonl:7", "reply cut")]
    assert "max_length 128" in finding.summary
    assert truncated_prompts(task(clean_items(1, 5)), tokenizer, 128).count == 0


def test_the_sentiment_task_has_no_duplicates_and_no_train_eval_overlap():
    found = by_name(cheap_findings(resolve_task("sentiment").load(0)))
    for name in ("duplicate_items", "conflicting_labels", "train_eval_overlap",
                 "train_eval_near_overlap", "rare_labels"):
        assert found[name].count == 0, found[name].rows
    assert found["label_imbalance"].value == 1.0


def test_an_older_results_file_gains_the_findings_table(tmp_path):
    path = tmp_path / "v4.db"
    Store(path).close()
    old = sqlite3.connect(path)
    old.executescript("DROP TABLE data_findings; PRAGMA user_version=4;")
    old.close()
    check_results_file(path)  # a v4 file is accepted as it is
    reader = open_read_only(path)
    assert data_findings(reader).empty  # the dashboard's reader copes without the table
    reader.close()
    store = Store(path)
    assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 5
    for count in (3, 1):  # the second replaces the first (same session, data, name)
        store.add_data_finding(session="s", task="t", data_hash="h", split="train",
                               name="near_duplicates", count=count, summary="rule",
                               rows=[{"source": "f:1"}])
    store.add_data_finding(session="s", task="t", data_hash="h", split="train",
                           name="label_imbalance", count=9, value=4.5, summary="ratio")
    rows = store.query("SELECT name, count, value, rows_json FROM data_findings ORDER BY id")
    assert [tuple(r) for r in rows] == [("near_duplicates", 1, None, '[{"source": "f:1"}]'),
                                        ("label_imbalance", 9, 4.5, "[]")]
    store.close()


@pytest.mark.slow
def test_the_suite_on_a_users_file_stores_warns_and_heads_the_session(tiny_model_dir,
                                                                      tmp_path):
    rng = random.Random(11)
    records = [{"instruction": sentence(rng), "output": sentence(rng, 3), "split": "train"}
               for _ in range(40)]
    base = sentence(rng)
    near = records[1]["instruction"].rsplit(" ", 1)[0] + " elsewhere"
    records += [
        {"instruction": base, "output": "a b c", "split": "train"},  # line 41
        {"instruction": base.upper() + "!", "output": "a b c", "split": "train"},  # 42: repeat
        {"instruction": base + ".", "output": "d e f", "split": "train"},  # 43: conflict
        {"instruction": sentence(rng), "output": sentence(rng, 90), "split": "train"},  # 44
        {"instruction": near, "output": "x", "split": "eval"},  # 45: nearly line 2
    ]
    records += [{"instruction": sentence(rng), "output": sentence(rng, 3), "split": split}
                for split in ["validation"] * 5 + ["eval"] * 5]
    file = tmp_path / "mine.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_suites([f"--task={file}", f"--model={tiny_model_dir}", "--results=r.db"],
                        tmp_path, suites=["test_data_quality.py"], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = {r["name"]: r for r in query_db(tmp_path / "r.db", "SELECT * FROM data_findings")}
    assert {name: row["count"] for name, row in found.items()} == {
        "duplicate_items": 1, "conflicting_labels": 1, "near_duplicates": 0,
        "train_eval_overlap": 0, "train_eval_near_overlap": 1, "answer_length_outliers": 1,
        "truncated_prompts": 1}  # line 44's 90-word answer passes max_length 256 tokens
    rows = {name: json.loads(row["rows_json"]) for name, row in found.items()}
    planted = {f"{file}:{line}" for line in (41, 42, 43)}
    for name in ("duplicate_items", "conflicting_labels"):
        assert {rows[name][0]["source"], rows[name][0]["matches"]} <= planted
    assert rows["train_eval_near_overlap"][0]["source"] == f"{file}:45"
    assert rows["train_eval_near_overlap"][0]["matches"] == f"train {file}:2"
    assert [r["source"] for r in rows["answer_length_outliers"]] == [f"{file}:44"]
    assert [r["source"] for r in rows["truncated_prompts"]] == [f"{file}:44"]
    assert len({row["session"] for row in found.values()}) == 1
    assert len(query_db(tmp_path / "r.db", "SELECT id FROM data_findings")) == len(found)
    header = result.stdout.split("collected")[0]
    assert "tunebench data check: 4 finding(s) to review" in header
    assert f"train_eval_near_overlap: 1 ({file}:45)" in header
    assert "run pytest suites/test_data_quality.py --task=" in header
    warnings = result.stdout.split("warnings summary")[1]
    for name in ("duplicate_items = 1", "conflicting_labels = 1",
                 "train_eval_near_overlap = 1", "answer_length_outliers = 1",
                 "truncated_prompts = 1"):
        assert name in warnings, warnings
    assert "DataWarning" in warnings
    suspect = query_db(tmp_path / "r.db", "SELECT value, extra_json FROM metrics WHERE name = "
                       "'suspect_labels'")  # the default candidate (zero-shot) looked too
    assert len(suspect) == 1
    extra = json.loads(suspect[0]["extra_json"])
    assert extra["in_sample"] is False and extra["scored"] == 44  # every train item
    table = query_db(tmp_path / "r.db", "SELECT item_id, extra_json FROM examples WHERE suite = "
                     "'data_quality.suspect_labels'")
    assert len(table) == suspect[0]["value"]
    assert all(json.loads(r["extra_json"])["source"].startswith(f"{file}:") for r in table)


def test_the_report_shows_the_data_check_of_a_task(tmp_path):
    from reports.data import connect
    from reports.export import sections
    from reports.sample import write_sample

    path = tmp_path / "sample.db"
    write_sample(path)
    train = [*clean_items(1, 20), item(21, clean_items(1, 1)[0].prompt_text.upper(), "a")]
    data = TaskData("sentiment", train, [], clean_items(100, 5, seed=3))
    store = Store(path)
    store_findings(store, "s", data, cheap_findings(data))
    store.close()
    conn = connect(path)
    try:
        parts = {part.title: part for part in sections(conn, charts=False)}
    finally:
        conn.close()
    [(caption, table)] = [t for t in parts["Task sentiment"].tables
                          if t[0].startswith("Data check")]
    assert "data " + data.fingerprint()[:12] in caption
    assert table.set_index("name").loc["duplicate_items", "count"] == "0"
    assert table.set_index("name").loc["conflicting_labels", "count"] == "1"
    assert not any(t[0].startswith("Data check") for t in parts["Task kb-qa"].tables)
