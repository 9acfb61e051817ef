"""Users' data that is almost right: the scoring decision and its note, task options, column
and label mapping, TSV, encodings and mixed layouts (harness.data.mapping, .scoring, .load)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.core import plugins
from harness.core.overrides import OverrideError, parse_overrides
from harness.data.load import DataError, DataWarning, load_examples, load_task_data
from harness.data.mapping import RecordMapping
from harness.runner.session import ExperimentSession, SessionOptions
from harness.runner.summary import session_table
from harness.tasks import DataFileTask, resolve_task
from tests.conftest import query_db, run_suites

WORDS = ["great", "awful", "fine", "boring", "lovely", "bad", "superb", "dull"]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_tsv(path: Path, rows: list[tuple[str, str]], header=("sentence", "label")) -> Path:
    lines = ["\t".join(header), *("\t".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reviews(n: int, start: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct (sentence, 0/1 label) rows."""
    return [(f"review {i}: the film was {WORDS[i % len(WORDS)]}", str(i % 2))
            for i in range(start, start + n)]


def labelled(n: int, labels=("negative", "positive"), **extra) -> list[dict]:
    return [{"instruction": f"Classify review {i}", "output": labels[i % len(labels)], **extra}
            for i in range(n)]


def everything(data) -> list:
    return data.train + data.validation + data.eval


# --- the scoring decision and its note -------------------------------------------------------


def test_classification_note_names_the_labels(tmp_path):
    data = load_task_data(str(write_jsonl(tmp_path / "s.jsonl", labelled(30))), 0)
    assert data.labels == ("negative", "positive")
    assert data.scoring == "scored as classification over 2 labels (negative, positive)"
    assert data.subset(4, 2, 2).scoring == data.scoring  # the budget's cut keeps the note


def test_almost_labels_warn_with_the_rare_ones_and_say_how_to_force(tmp_path):
    records = labelled(40)
    records[16]["output"] = "neutral-ish"  # line 17
    records[30]["output"] = "Positive"  # line 31
    path = write_jsonl(tmp_path / "train.jsonl", records)
    with pytest.warns(DataWarning) as caught:
        data = load_task_data(str(path), 0)
    assert data.labels == () and all(e.choices == () for e in everything(data))
    assert data.scoring.startswith("scored as free text: labels 'neutral-ish' (")
    assert f"'neutral-ish' ({path}:17)" in data.scoring
    assert f"'Positive' ({path}:31, close to 'positive')" in data.scoring
    assert "pass `--set task.labels=negative,positive` (or give each record `choices`)" in (
        data.scoring)
    message = str(caught[0].message)
    assert f"{path}:17" in message and f"{path}:31" in message
    one = labelled(40)
    one[16]["output"] = "neutral-ish"
    with pytest.warns(DataWarning, match=r"label 'neutral-ish' occurs once \(.*:17\)"):
        load_task_data(str(write_jsonl(tmp_path / "one.jsonl", one)), 0)


@pytest.mark.parametrize(("answers", "why"), [
    ([f"answer {i}" for i in range(30)], "30 distinct answers among 30 records"),
    (["same"] * 30, "every answer is 'same'"),
    (["a", "b", "c", "d"] * 2 + ["a", "b"], "4 distinct answers among only 10 records"),
])
def test_free_text_note_says_why(tmp_path, answers, why):
    records = [{"instruction": f"Question {i}?", "output": a} for i, a in enumerate(answers)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # not "almost labels": no warning
        data = load_task_data(str(write_jsonl(tmp_path / "qa.jsonl", records)), 0)
    assert data.labels == ()
    assert data.scoring.startswith("scored as free text") and why in data.scoring


def test_forced_labels_score_as_classification_and_refuse_other_answers(tmp_path):
    records = labelled(40)
    records[16]["output"] = "neutral-ish"
    path = write_jsonl(tmp_path / "r.jsonl", records)
    records[16]["output"] = "negative"
    clean = write_jsonl(tmp_path / "clean.jsonl", records)
    data = load_task_data(str(clean), 0, labels=["positive", "negative"])
    assert data.labels == ("positive", "negative")
    assert all(e.choices == ("positive", "negative") for e in everything(data))
    assert data.scoring.endswith("over 2 labels (positive, negative), given by task.labels")
    with pytest.raises(DataError) as error:
        load_task_data(str(path), 0, labels=["negative", "positive"])
    assert str(error.value).startswith(f"{path}:17: field 'output' is 'neutral-ish', which is "
                                       "not one of task.labels (negative, positive)")


def test_forced_scoring_modes(tmp_path):
    records = labelled(40)
    records[16]["output"] = "neutral-ish"
    path = str(write_jsonl(tmp_path / "r.jsonl", records))
    data = load_task_data(path, 0, scoring="classification")
    assert data.labels == ("negative", "neutral-ish", "positive")
    assert "given by task.scoring" in data.scoring
    shared = str(write_jsonl(tmp_path / "c.jsonl", labelled(30, choices=["negative", "positive"])))
    assert load_task_data(shared, 0).labels == ("negative", "positive")
    free = load_task_data(shared, 0, scoring="generation")
    assert free.labels == () and all(e.choices == () for e in everything(free))
    assert free.scoring == "scored as free text (task.scoring=generation)"
    with pytest.raises(DataError, match="needs at least 2 distinct answers"):
        load_task_data(str(write_jsonl(tmp_path / "one.jsonl", labelled(9, ("x",)))), 0,
                       scoring="classification")


def test_mixed_layouts_are_counted_in_a_warning_and_the_note(tmp_path):
    chat = [{"messages": [{"role": "user", "content": f"Chat review {i}"},
                          {"role": "assistant", "content": "positive"}]} for i in range(3)]
    path = write_jsonl(tmp_path / "reviews.jsonl", labelled(40) + chat)
    with pytest.warns(DataWarning, match=r"reviews\.jsonl: read 40 instruction records and 3 "
                                         r"chat records$"):
        data = load_task_data(str(path), 0)
    assert "; read 40 instruction records and 3 chat records" in data.scoring
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert "read" not in load_task_data(str(write_jsonl(tmp_path / "one.jsonl",
                                                            labelled(30))), 0).scoring


# --- columns, label names, numbers, TSV ------------------------------------------------------


def test_tsv_with_mapped_columns_and_label_names(tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", reviews(40))
    data = load_task_data(str(path), 0, columns={"input": "sentence", "output": "label"},
                          label_names={"0": "negative", "1": "positive"})
    assert data.labels == ("negative", "positive")
    example = next(e for e in everything(data) if e.id == "sst.tsv:2")  # the header is line 1
    assert example.messages == ({"role": "user", "content": "review 0: the film was great"},)
    assert example.answer == "negative" and example.choices == ("negative", "positive")
    assert "columns input=sentence, output=label; label names 0=negative, 1=positive" in (
        data.scoring)
    unnamed = load_task_data(str(path), 0, columns={"input": "sentence", "output": "label"})
    assert unnamed.labels == ("0", "1") and "--label-names" in unnamed.scoring
    assert unnamed.fingerprint() != data.fingerprint()  # the options change the data hash


def test_instruction_and_input_columns_make_one_prompt(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("task,text,gold,note\nSummarise,Long text,Short,x\n", encoding="utf-8")
    (example,) = load_examples(path, mapping=RecordMapping(
        {"instruction": "task", "input": "text", "output": "gold", "id": "note"}))
    assert example.messages[0]["content"] == "Summarise\n\nLong text"
    assert (example.answer, example.id) == ("Short", "x")


def test_unknown_column_lists_the_files_columns(tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", reviews(5))
    with pytest.raises(DataError) as error:
        load_examples(path, mapping=RecordMapping({"input": "sentense", "output": "label"}))
    assert str(error.value) == (
        f"{path}: --columns maps input to the column 'sentense', which the file does not have. "
        "Did you mean 'sentence'? Its columns: sentence, label.")


def test_errors_name_the_users_column(tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", [*reviews(3), ("no label here", "")])
    mapping = RecordMapping({"input": "sentence", "output": "label"})
    with pytest.raises(DataError, match=r"sst\.tsv:5: field 'label' is missing or empty"):
        load_examples(path, mapping=mapping)
    path = write_tsv(tmp_path / "three.tsv", [*reviews(3), ("a neutral one", "2")])
    named = RecordMapping(mapping.columns, {"0": "negative", "1": "positive"})
    with pytest.raises(DataError) as error:
        load_examples(path, mapping=named)
    assert str(error.value).startswith(
        f"{path}:5: field 'label' is '2', a value --label-names does not name (it names 0, 1)")
    columns = {"input": "sentence", "output": "label"}
    with pytest.raises(DataError, match=r"three\.tsv:5: field 'label' is '2', which is not one "
                                        r"of task\.labels \(0, 1\)"):
        load_task_data(str(path), 0, columns=columns, labels=["0", "1"])
    path = write_tsv(tmp_path / "twice.tsv", [*reviews(3), ("review 0: the film was great", "1")])
    with pytest.raises(DataError, match=r"twice\.tsv:5: field 'label' is '1' but .*twice\.tsv:2 "
                                        "has the same prompt"):
        load_task_data(str(path), 0, columns=columns)
    swapped = write_tsv(tmp_path / "swap.tsv", [("x", "")], header=("text", "input"))
    with pytest.raises(DataError, match=r"swap\.tsv:2: field 'input' is missing"):
        load_examples(swapped, mapping=RecordMapping({"input": "text", "output": "input"}))


def test_numeric_labels(tmp_path):
    records = [{"instruction": f"Review {i}", "output": i % 2} for i in range(4)]
    jsonl = write_jsonl(tmp_path / "n.jsonl", records)
    assert [e.answer for e in load_examples(jsonl)] == ["0", "1", "0", "1"]  # unmapped: digits
    parquet = tmp_path / "n.parquet"
    pq.write_table(pa.Table.from_pylist(
        [{"text": f"Review {i}", "label": [0.0, 1.0, None][i % 3]} for i in range(6)]), parquet)
    mapping = RecordMapping({"input": "text", "output": "label"}, {"0": "bad", "1": "good"})
    with pytest.raises(DataError, match=r"n\.parquet row 3: field 'label' is missing"):
        load_examples(parquet, mapping=mapping)  # a gap: the column is float with a null
    pq.write_table(pa.Table.from_pylist(
        [{"text": f"Review {i}", "label": float(i % 2)} for i in range(4)]), parquet)
    assert [e.answer for e in load_examples(parquet, mapping=mapping)] == [
        "bad", "good", "bad", "good"]
    assert [e.answer for e in load_examples(parquet, mapping=RecordMapping(mapping.columns))] == [
        "0", "1", "0", "1"]
    flags = write_jsonl(tmp_path / "b.jsonl", [{"instruction": "Q", "output": True}])
    assert load_examples(flags)[0].answer == "true"
    scores = write_jsonl(tmp_path / "f.jsonl", [{"instruction": "Q", "output": 0.35}])
    with pytest.raises(DataError, match=r"f\.jsonl:1: field 'output' is the number 0\.35; "
                                        "answers are compared as text"):
        load_examples(scores)


def test_label_names_rewrite_choices_too(tmp_path):
    records = [{"instruction": f"Q{i}", "output": i % 2, "choices": [0, 1]} for i in range(4)]
    names = RecordMapping(label_names={"0": "no", "1": "yes"})
    examples = load_examples(write_jsonl(tmp_path / "c.jsonl", records), mapping=names)
    assert {e.choices for e in examples} == {("no", "yes")}
    csv = tmp_path / "c.csv"
    csv.write_text("instruction,output,choices\nQ,1,0|1\nR,yes,0|1\n", encoding="utf-8")
    assert [(e.answer, e.choices) for e in load_examples(csv, mapping=names)] == [
        ("yes", ("no", "yes")), ("yes", ("no", "yes"))]  # a value already named is kept


def test_tsv_split_files_in_a_directory(tmp_path):
    write_tsv(tmp_path / "train.tsv", reviews(30))
    write_tsv(tmp_path / "test.tsv", reviews(8, start=100))
    data = load_task_data(str(tmp_path), 0, columns={"input": "sentence", "output": "label"})
    assert len(data.eval) == 8 and len(data.train) + len(data.validation) == 30


def test_tsv_with_too_many_values_says_tabs(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("instruction\toutput\nQ\tA\textra\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.tsv:2: 3 values .* quote values that contain tabs"):
        load_examples(path)


# --- encodings -------------------------------------------------------------------------------


def test_cp1252_file_names_line_byte_and_column_and_suggests_the_encoding(tmp_path):
    path = tmp_path / "reviews.csv"
    lines = ["instruction,output"] + [f"Review {i},ok" for i in range(10)] + [
        "Le caf\u00e9 \u2014 tr\u00e8s bon,ok"]
    path.write_bytes("\n".join(lines).encode("cp1252"))
    with pytest.raises(DataError) as error:
        load_examples(path)
    assert str(error.value) == (
        f"{path}:12: not valid UTF-8 (byte 0xe9 at column 7); the file looks like "
        "cp1252/latin-1: re-save it as UTF-8 or pass `--set task.encoding=cp1252`.")
    examples = load_examples(path, encoding="cp1252")
    assert examples[-1].messages[0]["content"] == "Le caf\u00e9 \u2014 tr\u00e8s bon"


def test_column_counts_characters_and_other_encodings_are_suggested(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes('{"instruction": "na\u00efve \u2192 "}\n'.encode() + b'{"x": "\x81"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: not valid UTF-8 \(byte 0x81 at column 8\)"
                                        r"; the file looks like latin-1: .*task\.encoding="
                                        "latin-1"):
        load_examples(path)  # 0x81 is no cp1252 character
    path.write_bytes('{"instruction": "hi", "output": "x"}\n'.encode("utf-16"))
    with pytest.raises(DataError, match=r"looks like utf-16: .*task\.encoding=utf-16"):
        load_examples(path)
    assert load_examples(path, encoding="utf-16")[0].answer == "x"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"instruction": "hi", "output": "x"}\n')
    assert load_examples(path)[0].messages[0]["content"] == "hi"  # a UTF-8 BOM is fine
    assert load_examples(path, encoding="UTF8")[0].messages[0]["content"] == "hi"
    path.write_bytes('{"instruction": "caf\u00e9", "output": "x"}\n'.encode("cp1252"))
    with pytest.raises(DataError, match=r"d\.jsonl:1: not valid utf-8 \(byte 0xe9 at column 21\)"
                                        "; task.encoding=utf-8 does not fit the file"):
        load_examples(path, encoding="utf-8")


# --- task options: parsing, the session, the store and the summary ----------------------------


def test_task_options_parse_and_configure_a_data_file_task(tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", reviews(40))
    task = resolve_task(str(path))
    parsed = parse_overrides(["task.columns=input=sentence,output=label",
                              "task.label_names=0=negative,1=positive", "task.scoring=auto",
                              "task.encoding=cp1252", "few-shot.k=2"], plugins.approaches(), task)
    assert parsed["task"] == {"columns": {"input": "sentence", "output": "label"},
                              "label_names": {"0": "negative", "1": "positive"},
                              "scoring": "auto", "encoding": "cp1252"}
    assert parsed["few-shot"] == {"k": 2}
    configured = resolve_task(str(path), parsed["task"])
    assert isinstance(configured, DataFileTask)
    assert configured.load(0).labels == ("negative", "positive")


@pytest.mark.parametrize(("item", "message"), [
    ("task.lables=a,b", "task has no option 'lables'. Did you mean 'labels'?"),
    ("task.scoring=labels", "'labels' is not one of auto, classification, generation"),
    ("task.columns=input", "expected name=value pairs separated by commas"),
    ("task.columns=inptu=text", "--set 'task.columns=inptu=text': 'inptu' is not a record "
                                "field (did you mean 'input'?)"),
    ("task.labels=one", "--set 'task.labels=one': give at least two labels"),
    ("task.encoding=klingon", "--set 'task.encoding=klingon': unknown encoding"),
    ("task.label_names=0=", "--set 'task.label_names=0=': give every pair as name=value"),
])
def test_bad_task_options_say_what_is_wrong(tmp_path, item, message):
    path = str(write_tsv(tmp_path / "sst.tsv", reviews(10)))
    with pytest.raises(OverrideError) as error:
        parsed = parse_overrides([item], plugins.approaches(), resolve_task(path))
        resolve_task(path, parsed["task"])
    assert message in str(error.value)


def test_task_options_need_a_data_file(tmp_path):
    with pytest.raises(OverrideError) as error:
        ExperimentSession(SessionOptions(approaches=["zero-shot"], budget="smoke",
                                         results=tmp_path / "r.db",
                                         overrides=["task.labels=a,b"]))
    assert str(error.value) == ("--set 'task.labels=a,b': task options apply to data files "
                                "(--task=PATH or hf:<id>); 'sentiment' is a built-in task and "
                                "takes only task.metric")
    with pytest.raises(ValueError, match="'sentiment' is a built-in task"):
        resolve_task("sentiment", {"labels": ["a", "b"]})


def test_scoring_note_reaches_the_run_info_and_the_summary(tmp_path, tiny_model_dir):
    path = write_tsv(tmp_path / "sst.tsv", reviews(60))
    session = ExperimentSession(SessionOptions(
        approaches=["zero-shot"], task=str(path), model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", session="mapped",
        overrides=["task.columns=input=sentence,output=label",
                   "task.label_names=0=negative,1=positive"]))
    try:
        assert session.task_data().labels == ("negative", "positive")
        with session.open_run("zero-shot"):
            pass
        table = session_table(session.store, "mapped", tmp_path / "r.db", session.metrics)
    finally:
        session.close()
    note = ("scored as classification over 2 labels (negative, positive); columns "
            "input=sentence, output=label; label names 0=negative, 1=positive")
    (run,) = query_db(tmp_path / "r.db", "SELECT info_json FROM runs")
    assert json.loads(run["info_json"])["task_scoring"] == note
    assert f"task sst: {note}" in table.splitlines()


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tsv_with_0_1_labels_runs_as_classification(tiny_model_dir, tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", reviews(80))
    result = run_suites(
        [f"--task={path}", "--columns", "input=sentence,output=label", "--label-names",
         "0=negative,1=positive", "--approach=zero-shot", "--budget=smoke",
         f"--model={tiny_model_dir}", "--results=r.db", "-q"], tmp_path,
        suites=["test_accuracy.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = query_db(tmp_path / "r.db", "SELECT id, task, info_json FROM runs")
    assert run["task"] == "sst"
    scoring = json.loads(run["info_json"])["task_scoring"]
    assert scoring.startswith("scored as classification over 2 labels (negative, positive)")
    metrics = {m["name"]: m for m in query_db(tmp_path / "r.db", "SELECT * FROM metrics")}
    assert {"accuracy", "macro_f1", "recall[negative]", "recall[positive]"} <= set(metrics)
    assert metrics["accuracy"]["n"] == 8  # the file's eval split (10% of 80)
    references = {r["reference"] for r in query_db(
        tmp_path / "r.db", "SELECT reference FROM examples WHERE suite = 'accuracy.choice'")}
    assert references <= {"negative", "positive"}
    assert f"task sst: {scoring}" in result.stdout.split("tunebench results")[1]


@pytest.mark.slow
def test_help_explains_the_data_options(tmp_path):
    result = run_suites(["--help"], tmp_path)
    assert result.returncode == 0
    options = " ".join(result.stdout.split("tunebench experiment options")[1].split())
    assert "--columns=FIELD=COLUMN,..." in options and "--columns input=sentence,output=label" in (
        options)
    assert "--label-names=VALUE=LABEL,..." in options and "0=negative,1=positive" in options
    assert "--set task.labels=negative,positive" in options and "TSV" in options


@pytest.mark.slow
def test_a_shorthand_and_its_set_option_together_are_a_usage_error(tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", reviews(40))
    result = run_suites([f"--task={path}", "--columns", "input=sentence,output=label",
                         "--set", "task.columns=input=text,output=label"], tmp_path)
    assert result.returncode == 4
    assert "--columns and --set task.columns=... both given; keep one" in result.stderr
    assert not (tmp_path / "results").exists()


def test_hub_dataset_columns_and_label_ids_are_mapped(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "sst"
    folder.mkdir()
    (folder / "train.csv").write_text("sentence,label\n" + "".join(
        f"{text},{label}\n" for text, label in reviews(20)), encoding="utf-8")
    (folder / "test.csv").write_text("sentence,label\nheld out one,0\nheld out two,1\n",
                                     encoding="utf-8")
    columns = {"input": "sentence", "output": "label"}
    data = load_task_data(f"hf:{folder}", 0, columns=columns,
                          label_names={"0": "negative", "1": "positive"})
    assert data.labels == ("negative", "positive")  # the CSV loader reads 0/1 as integers
    assert {(e.prompt_text, e.answer) for e in data.eval} == {
        ("held out one", "negative"), ("held out two", "positive")}
    with pytest.raises(DataError, match=r"sst\[train\]: --columns maps input to the column "
                                        r"'text', .* Its columns: sentence, label\."):
        load_task_data(f"hf:{folder}", 0, columns={"input": "text", "output": "label"})
