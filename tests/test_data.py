"""Tests for harness.data.load: user data files, validation messages, splits and checks."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
import warnings
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.data.load import (
    DataError,
    DataWarning,
    check_duplicates,
    check_overlap,
    load_examples,
    load_task_data,
)
from harness.tasks.base import Example


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_parquet(path: Path, records: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def qa(i: int, answer: str | None = None, **extra) -> dict:
    return {"instruction": f"Question number {i}?", "output": answer or f"answer {i}", **extra}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def data_error(path: Path, records: list, *parts: str) -> str:
    """Write ``records`` as JSONL, expect a DataError containing every part; return it."""
    write_jsonl(path, records)
    with pytest.raises(DataError) as info:
        load_examples(path)
    message = str(info.value)
    for part in (path.name, *parts):
        assert part in message, (part, message)
    return message


# --- formats ---------------------------------------------------------------------------------


def test_jsonl_all_three_formats(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        {"instruction": "Translate", "input": "chat", "output": "cat"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
        {"messages": [{"role": "system", "content": "Be brief."}, user("2+2?"), bot("4"),
                      user("and 3+3?"), bot("6")]},
        {"prompt": "Pick one", "chosen": "good", "rejected": "bad"},
        {"prompt": [user("Tell a joke")], "chosen": [user("Tell a joke"), bot("funny")],
         "rejected": [bot("dull")]},
    ])
    with pytest.warns(DataWarning, match=r"mixed\.jsonl: read 2 instruction records, 2 "
                                         "preference records and 1 chat record$"):
        a, b, chat, pref, pref_msgs = load_examples(path)
    assert a.messages == (user("Translate\n\nchat"),) and a.answer == "cat"
    assert b.messages == (user("Say hi"),) and b.rejected is None
    assert chat.messages[0] == {"role": "system", "content": "Be brief."}
    assert chat.messages[-1] == user("and 3+3?") and len(chat.messages) == 4
    assert chat.answer == "6"
    assert pref.messages == (user("Pick one"),)
    assert (pref.answer, pref.rejected) == ("good", "bad")
    assert (pref_msgs.answer, pref_msgs.rejected) == ("funny", "dull")
    assert a.id == "mixed.jsonl:1" and pref_msgs.id == "mixed.jsonl:5"
    assert a.meta["source"] == f"{path}:1"
    assert [e.meta["format"] for e in (a, chat, pref)] == ["instruction", "chat", "preference"]


def test_jsonl_skips_blank_lines_but_keeps_file_line_numbers(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text(json.dumps(qa(1)) + "\n\n\n" + json.dumps(qa(2)) + "\n")
    examples = load_examples(path)
    assert [e.meta["source"] for e in examples] == [f"{path}:1", f"{path}:4"]


def test_json_array_and_json_lines_with_json_extension(tmp_path):
    array = tmp_path / "array.json"
    array.write_text(json.dumps([qa(1), qa(2), qa(3)], indent=2))
    examples = load_examples(array)
    assert [e.answer for e in examples] == ["answer 1", "answer 2", "answer 3"]
    # indent=2: "[" on line 1, each object spans 4 lines starting at lines 2, 6, 10.
    assert [e.id for e in examples] == ["array.json:2", "array.json:6", "array.json:10"]
    lines = write_jsonl(tmp_path / "lines.json", [qa(1), qa(2)])
    assert [e.answer for e in load_examples(lines)] == ["answer 1", "answer 2"]


def test_json_array_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": }\n]')
    with pytest.raises(DataError, match=r"broken\.json:3: invalid JSON"):
        load_examples(path)


def test_csv_formats_and_line_numbers(tmp_path):
    header = ["instruction", "input", "output", "messages", "choices"]
    path = write_csv(tmp_path / "d.csv", header, [
        ["Classify", "great film", "positive", "", "positive|negative"],
        ["Multi\nline", "", "x", "", ""],  # a quoted cell spanning two file lines
        ["", "", "", json.dumps([user("hi"), bot("hello")]), ""],
    ])
    with pytest.warns(DataWarning, match="2 instruction records and 1 chat record"):
        first, second, third = load_examples(path)
    assert first.messages == (user("Classify\n\ngreat film"),)
    assert first.choices == ("positive", "negative")
    assert first.meta["source"] == f"{path}:2"  # header is line 1
    assert second.messages == (user("Multi\nline"),)
    assert third.meta["source"] == f"{path}:5"  # the record on line 3 spans lines 3-4
    assert (third.messages, third.answer) == ((user("hi"),), "hello")


def test_csv_preference_with_json_message_prompt(tmp_path):
    path = write_csv(tmp_path / "p.csv", ["prompt", "chosen", "rejected", "system"], [
        [json.dumps([user("Q?")]), "yes", "no", "You are kind."],
        ["[INST] plain text that looks like a list", "a", "b", ""],
    ])
    first, second = load_examples(path)
    assert first.messages == ({"role": "system", "content": "You are kind."}, user("Q?"))
    assert (first.answer, first.rejected) == ("yes", "no")
    assert second.messages == (user("[INST] plain text that looks like a list"),)


def test_csv_errors_use_file_lines(tmp_path):
    path = write_csv(tmp_path / "bad.csv", ["instruction", "output"], [["q1", "a1"], ["q2", ""]])
    with pytest.raises(DataError, match=r"bad\.csv:3: field 'output' is missing"):
        load_examples(path)
    extra = tmp_path / "extra.csv"
    extra.write_text("instruction,output\nq,a,surplus\n")
    with pytest.raises(DataError, match=r"extra\.csv:2: .*header"):
        load_examples(extra)
    unterminated = tmp_path / "quote.csv"
    unterminated.write_text('instruction,output\nq,a\n"open quote,x\n')
    with pytest.raises(DataError, match=r"quote\.csv:3: invalid CSV"):
        load_examples(unterminated)


def test_parquet_formats(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", [
        {"messages": [user("ping"), bot("pong")], "choices": ["pong", "pang"], "id": "c1"},
        {"messages": [user("tic"), bot("tac")], "choices": ["tac"], "id": "c2"},
    ])
    first, second = load_examples(path)
    assert first.messages == (user("ping"),) and first.answer == "pong"
    assert first.choices == ("pong", "pang") and first.id == "c1"
    assert second.meta["source"] == f"{path}:2"
    strings = write_parquet(tmp_path / "s.parquet", [
        {"prompt": json.dumps([user("Q")]), "chosen": json.dumps([bot("A")]), "rejected": "B",
         "instruction": None, "output": None},
        {"prompt": None, "chosen": None, "rejected": None, "instruction": "I", "output": "O"},
    ])
    with pytest.warns(DataWarning, match="1 preference record and 1 instruction record"):
        pref, inst = load_examples(strings)
    assert (pref.messages, pref.answer, pref.rejected) == ((user("Q"),), "A", "B")
    assert inst.messages == (user("I"),) and inst.rejected is None


def test_parquet_errors_say_row(tmp_path):
    path = write_parquet(tmp_path / "bad.parquet", [
        {"messages": json.dumps([user("a"), bot("b")])},
        {"messages": json.dumps([user("a"), {"content": "b"}])},
    ])
    with pytest.raises(DataError, match=r"bad\.parquet row 2: field 'messages\[1\]\.role'"):
        load_examples(path)


def test_optional_fields(tmp_path):
    path = write_jsonl(tmp_path / "opt.jsonl", [
        qa(1, "yes", id="item-a", system="Answer yes or no.", choices=["yes", "no"], split="dev"),
        qa(2, id=7, split="TEST"),
        qa(3, split="train"),
    ])
    a, b, c = load_examples(path)
    assert a.id == "item-a" and b.id == "7" and c.id == "opt.jsonl:3"
    assert a.messages[0] == {"role": "system", "content": "Answer yes or no."}
    assert a.choices == ("yes", "no") and b.choices == ()
    assert [e.meta["split"] for e in (a, b, c)] == ["validation", "eval", "train"]


# --- errors ----------------------------------------------------------------------------------


def test_unsupported_extension_and_unreadable_file(tmp_path):
    txt = tmp_path / "data.txt"
    txt.write_text("hello")
    with pytest.raises(DataError, match=r"data\.txt.*\.jsonl, \.json, \.csv, \.tsv, \.parquet"):
        load_examples(txt)
    binary = tmp_path / "latin.jsonl"
    binary.write_bytes(b'{"instruction": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin\.jsonl:1: not valid UTF-8 \(byte 0xe9 at "
                                        r"column 21\); the file looks like cp1252/latin-1"):
        load_examples(binary)
    with pytest.raises(DataError, match=r"missing\.csv: cannot read"):
        load_examples(tmp_path / "missing.csv")


def test_invalid_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(qa(1)) + "\n" + '{"instruction": "x", "output": }\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON \(Expecting value"):
        load_examples(path)


@pytest.mark.parametrize(
    ("record", "parts"),
    [
        (["a", "b"], ["not an object"]),
        ({"question": "q", "label": "a"}, ["no known field", "'question'", "'instruction'"]),
        ({"instruction": "q", "output": "a", "messages": [user("q"), bot("a")]},
         ["'instruction'", "'messages'", "mix"]),
        ({"instruction": "q", "chosen": "a"}, ["'instruction'", "'chosen'", "mix"]),
        ({"instruction": "q"}, ["field 'output' is missing"]),
        ({"instruction": "   ", "output": "a"}, ["field 'instruction' is missing or empty"]),
        ({"prompt": "q", "chosen": "a"}, ["field 'rejected' is missing"]),
        ({"instruction": 5, "output": "a"}, ["field 'instruction' must be a string, got int"]),
        ({"messages": "hello"}, ["field 'messages' must be a non-empty list"]),
        ({"messages": [user("q"), {"content": "a"}]}, ["field 'messages[1].role' is missing"]),
        ({"messages": [user("q"), {"role": "bot", "content": "a"}]},
         ["field 'messages[1].role' is 'bot'", "assistant"]),
        ({"messages": [user("q"), bot("")]}, ["field 'messages[1].content' is empty"]),
        ({"messages": [bot("a"), user("q")]}, ["field 'messages'", "last message", "'user'"]),
        ({"messages": [{"role": "system", "content": "s"}, bot("a")]},
         ["field 'messages'", "end with a user message"]),
        ({"prompt": [user("q")], "chosen": [user("q")], "rejected": "r"},
         ["field 'chosen' has no assistant message"]),
        (qa(1, "maybe", choices=["yes", "no"]), ["field 'output'", "'maybe'", "not one of"]),
        (qa(1, choices=[["a"], "b"]), ["field 'choices' must be a list of strings"]),
        (qa(1, split="holdout"), ["field 'split' is 'holdout'", "validation"]),
        (qa(1, id=[1]), ["field 'id' must be"]),
        ({"messages": [{"role": "system", "content": "s"}, user("q"), bot("a")], "system": "t"},
         ["field 'system' conflicts"]),
    ],
)
def test_record_errors_name_file_line_and_field(tmp_path, record, parts):
    message = data_error(tmp_path / "train.jsonl", [qa(0), record], "train.jsonl:2:", *parts)
    assert message.startswith(f"{tmp_path / 'train.jsonl'}:2: ")


def test_missing_field_message_says_what_to_do(tmp_path):
    message = data_error(tmp_path / "t.jsonl", [{"instruction": "q"}], "t.jsonl:1:")
    assert "Each record needs 'instruction' and 'output'" in message
    assert "'messages'" in message and "'prompt'/'chosen'/'rejected'" in message


def test_empty_file(tmp_path):
    for name in ("empty.jsonl", "empty.csv"):
        path = tmp_path / name
        path.write_text("\n\n" if name.endswith("jsonl") else "instruction,output\n")
        with pytest.raises(DataError, match=rf"{name}: the file holds no records"):
            load_examples(path)


# --- duplicates and overlap ------------------------------------------------------------------


def test_duplicates_dropped_with_warning_naming_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(1), qa(2), qa(1), qa(3), qa(2)])
    with pytest.warns(DataWarning) as record:
        kept = check_duplicates(load_examples(path))
    assert [e.id for e in kept] == ["d.jsonl:1", "d.jsonl:2", "d.jsonl:4"]
    assert len(record) == 1
    text = str(record[0].message)
    assert "2 exact duplicate" in text
    assert f"{path}:3 (same as {path}:1)" in text and f"{path}:5 (same as {path}:2)" in text


def test_no_warning_without_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(1), qa(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(check_duplicates(load_examples(path))) == 2


def test_preference_pairs_for_one_prompt_are_not_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": "q", "chosen": "a", "rejected": "b"},
        {"prompt": "q", "chosen": "a", "rejected": "c"},
        {"prompt": "q", "chosen": "c", "rejected": "b"},
    ])
    assert len(check_duplicates(load_examples(path))) == 3


def test_contradictory_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [qa(1, "yes"), qa(2), qa(1, "no")])
    with pytest.raises(DataError) as info:
        check_duplicates(load_examples(path))
    message = str(info.value)
    assert f"{path}:3" in message and f"{path}:1" in message
    assert "field 'output'" in message and "contradictory" in message


def test_overlap_lists_eval_lines_and_count(tmp_path):
    train = load_examples(write_jsonl(tmp_path / "train.jsonl", [qa(i) for i in range(10)]))
    eval_records = [qa(20), {"instruction": "QUESTION number 3", "output": "other"}, qa(7)]
    eval_items = load_examples(write_jsonl(tmp_path / "eval.jsonl", eval_records))
    with pytest.raises(DataError) as info:
        check_overlap(train, eval_items, train_name="train", eval_name="eval")
    message = str(info.value)
    assert message.startswith("2 eval item(s)")
    assert f"{tmp_path / 'eval.jsonl'}:2 (= {tmp_path / 'train.jsonl'}:4)" in message
    assert f"{tmp_path / 'eval.jsonl'}:3" in message and "eval.jsonl:1 " not in message
    assert "Remove them from one side" in message
    check_overlap(train, eval_items[:1], train_name="train", eval_name="eval")  # no error


def test_overlap_lists_at_most_five(tmp_path):
    items = load_examples(write_jsonl(tmp_path / "x.jsonl", [qa(i) for i in range(8)]))
    with pytest.raises(DataError) as info:
        check_overlap(items, items, train_name="train", eval_name="eval")
    assert str(info.value).startswith("8 eval item(s)")
    assert f"{tmp_path / 'x.jsonl'}:5 " in str(info.value)
    assert f"{tmp_path / 'x.jsonl'}:6 " not in str(info.value)


# --- load_task_data --------------------------------------------------------------------------


def test_file_without_split_is_split_80_10_10_by_seed(tmp_path):
    path = write_jsonl(tmp_path / "tasks.jsonl", [qa(i) for i in range(100)])
    data = load_task_data(str(path), seed=1)
    assert data.name == "tasks"
    assert (len(data.train), len(data.validation), len(data.eval)) == (80, 10, 10)
    ids = [e.id for e in data.train + data.validation + data.eval]
    assert sorted(ids) == sorted(f"tasks.jsonl:{i}" for i in range(1, 101))
    again = load_task_data(str(path), seed=1)
    assert [e.id for e in again.eval] == [e.id for e in data.eval]
    assert [e.id for e in again.train] == [e.id for e in data.train]
    assert again.fingerprint() == data.fingerprint()
    other = load_task_data(str(path), seed=2)
    assert {e.id for e in other.eval} != {e.id for e in data.eval}
    assert data.labels == () and all(e.choices == () for e in data.train)


def test_small_file_split_and_too_small(tmp_path):
    data = load_task_data(str(write_jsonl(tmp_path / "three.jsonl", [qa(i) for i in range(3)])), 0)
    assert (len(data.train), len(data.validation), len(data.eval)) == (1, 1, 1)
    two = write_jsonl(tmp_path / "two.jsonl", [qa(1), qa(2)])
    with pytest.raises(DataError, match=r"two\.jsonl: only 2 .*at least 3"):
        load_task_data(str(two), 0)


def test_random_split_drops_duplicates_before_splitting(tmp_path):
    path = write_jsonl(tmp_path / "dups.jsonl", [qa(i % 25) for i in range(50)])
    with pytest.warns(DataWarning, match="25 exact duplicate"):
        data = load_task_data(str(path), 3)
    assert len(data.train) + len(data.validation) + len(data.eval) == 25


def test_file_with_split_field(tmp_path):
    records = [qa(i, split="train") for i in range(20)]
    records += [qa(i, split="test") for i in range(20, 24)]
    data = load_task_data(str(write_jsonl(tmp_path / "s.jsonl", records)), seed=0)
    assert len(data.eval) == 4 and all(e.meta["split"] == "eval" for e in data.eval)
    # no validation records: 10% of train is carved off
    assert (len(data.train), len(data.validation)) == (18, 2)
    partial = write_jsonl(tmp_path / "partial.jsonl", [qa(1, split="train"), qa(2)])
    with pytest.raises(DataError, match=r"partial\.jsonl:2: field 'split' is missing"):
        load_task_data(str(partial), 0)
    no_eval = write_jsonl(tmp_path / "noeval.jsonl", [qa(1, split="train"), qa(2, split="val")])
    with pytest.raises(DataError, match="eval split is empty"):
        load_task_data(str(no_eval), 0)


def test_directory_layout_with_aliases(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [qa(i) for i in range(12)])
    write_csv(tmp_path / "dev.csv", ["instruction", "output"], [["dev q", "dev a"]])
    write_jsonl(tmp_path / "test.jsonl", [qa(i) for i in range(100, 105)])
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_task_data(str(tmp_path), seed=0)
    assert data.name == tmp_path.name
    assert len(data.train) == 12 and len(data.eval) == 5
    assert [e.id for e in data.validation] == ["dev.csv:2"]
    assert all(e.id.startswith("test.jsonl:") for e in data.eval)


def test_directory_without_validation_carves_it_from_train(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [qa(i) for i in range(30)])
    write_jsonl(tmp_path / "eval.jsonl", [qa(i) for i in range(100, 103)])
    data = load_task_data(str(tmp_path), seed=5)
    assert (len(data.train), len(data.validation), len(data.eval)) == (27, 3, 3)
    assert all(e.id.startswith("train.jsonl:") for e in data.validation)


def test_directory_missing_eval(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [qa(1)])
    write_jsonl(tmp_path / "holdout.jsonl", [qa(2)])
    with pytest.raises(DataError) as info:
        load_task_data(str(tmp_path), 0)
    message = str(info.value)
    assert "no eval file" in message and "holdout.jsonl, train.jsonl" in message
    assert "eval.*" in message and "test.*" in message


def test_directory_overlap_between_train_and_eval(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [qa(i) for i in range(10)])
    write_jsonl(tmp_path / "eval.jsonl", [qa(50), qa(4)])
    with pytest.raises(DataError, match=r"1 eval item.*eval\.jsonl:2 \(= .*train\.jsonl:5\)"):
        load_task_data(str(tmp_path), 0)


def test_directory_record_split_must_match_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [qa(1), qa(2, split="eval")])
    write_jsonl(tmp_path / "eval.jsonl", [qa(3)])
    with pytest.raises(DataError, match=r"train\.jsonl:2: field 'split' is 'eval'"):
        load_task_data(str(tmp_path), 0)


def test_classification_detected_and_choices_set(tmp_path):
    labels = ["positive", "negative", "neutral"]
    records = [{"instruction": f"Review {i}", "output": labels[i % 3]} for i in range(30)]
    data = load_task_data(str(write_jsonl(tmp_path / "sentiment.jsonl", records)), seed=0)
    assert data.labels == ("negative", "neutral", "positive")
    for example in data.train + data.validation + data.eval:
        assert example.choices == data.labels


def test_explicit_shared_choices_become_labels(tmp_path):
    records = [qa(i, "b" if i % 2 else "a", choices=["b", "a", "c"]) for i in range(10)]
    data = load_task_data(str(write_jsonl(tmp_path / "mc.jsonl", records)), seed=0)
    assert data.labels == ("b", "a", "c")


def test_free_text_answers_are_not_classification(tmp_path):
    data = load_task_data(str(write_jsonl(tmp_path / "qa.jsonl", [qa(i) for i in range(30)])), 0)
    assert data.labels == () and all(e.choices == () for e in data.train)
    # Few distinct answers but each value only once or twice vs. many records: not labels.
    rare = [qa(i, ["x", "y", "z"][i] if i < 3 else "common") for i in range(30)]
    data = load_task_data(str(write_jsonl(tmp_path / "rare.jsonl", rare)), 0)
    assert data.labels == ()
    # Varying per-item choices (multiple choice QA): no task-level labels, choices kept.
    mc = [qa(i, f"opt{i}", choices=[f"opt{i}", "other"]) for i in range(10)]
    data = load_task_data(str(write_jsonl(tmp_path / "mc.jsonl", mc)), 0)
    assert data.labels == () and all(len(e.choices) == 2 for e in data.eval)


def test_nonexistent_path(tmp_path):
    spec = str(tmp_path / "nope.jsonl")
    with pytest.raises(DataError) as info:
        load_task_data(spec, 0)
    message = str(info.value)
    assert spec in message and "no such file or directory" in message
    assert "train.*" in message and "hf:owner/name" in message and ".parquet" in message


def test_hf_offline_fails_fast_with_local_file_hint(tmp_path, monkeypatch):
    # ``datasets`` is imported (above) before the variables are set, as in a long-lived
    # process: the loader must still honour them rather than retry the network.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    started = time.monotonic()
    with pytest.raises(DataError) as info:
        load_task_data("hf:tunebench-no-such-owner/no-such-dataset-xyz", 0)
    assert time.monotonic() - started < 10  # no network retries
    message = str(info.value)
    assert "tunebench-no-such-owner/no-such-dataset-xyz" in message
    assert "could not be loaded" in message and "local data file" in message
    assert "works offline" in message


def test_hf_dataset_records_converted(monkeypatch):
    train = [{"instruction": f"Q{i}", "output": "yes" if i % 2 else "no"} for i in range(20)]
    loaded = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(train),
        "test": datasets.Dataset.from_list([{"instruction": "Q99", "output": "yes"},
                                            {"instruction": "Q98", "output": "no"}]),
        "unsupervised": datasets.Dataset.from_list([{"text": "ignored"}]),
    })
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a: calls.append(a) or loaded)
    data = load_task_data("hf:owner/name:cfg", seed=0)
    assert calls == [("owner/name", "cfg")]
    assert data.name == "owner/name:cfg"
    assert len(data.eval) == 2 and len(data.train) + len(data.validation) == 20
    assert {e.id for e in data.eval} == {"owner/name[test]:1", "owner/name[test]:2"}
    assert data.labels == ("no", "yes")

    bad = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"instruction": "q"}])})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a: bad)
    with pytest.raises(DataError, match=r"owner/name\[train\] row 1: field 'output' is missing"):
        load_task_data("hf:owner/name", 0)


def test_examples_are_frozen_examples(tmp_path):
    """Loaded examples cannot be changed in place (a suite or plugin editing one would change
    what every later suite scores): fields cannot be reassigned, the conversation is a tuple,
    and loading the same file again gives equal examples."""
    path = write_jsonl(tmp_path / "one.jsonl", [qa(1)])
    (example,) = load_examples(path)
    assert isinstance(example, Example)
    with pytest.raises(dataclasses.FrozenInstanceError):
        example.answer = "something else"  # type: ignore[misc]
    with pytest.raises(TypeError):
        example.messages[0] = {"role": "user", "content": "changed"}  # type: ignore[index]
    (again,) = load_examples(path)
    assert again == example and again is not example


def test_random_split_keeps_same_prompt_variants_together(tmp_path):
    # Each prompt appears twice, differing only in case/punctuation: not exact duplicates,
    # but a split putting the two on different sides would leak (and fail the overlap check).
    records = [qa(i) for i in range(20)]
    records += [{"instruction": f"QUESTION NUMBER {i}", "output": f"answer {i}"} for i in range(20)]
    path = write_jsonl(tmp_path / "variants.jsonl", records)
    for seed in range(5):
        data = load_task_data(str(path), seed)
        assert len(data.train) + len(data.validation) + len(data.eval) == 40
        assert len(data.eval) % 2 == 0 and len(data.validation) % 2 == 0
