"""RAG through the experiment runner: compositions, a user's own corpus, clear refusals."""

import json
import sqlite3

import pytest

from tests.conftest import run_suites

pytestmark = pytest.mark.slow  # the runner end to end in subprocesses

FACTS = [("blue badge", "visitors"), ("green badge", "contractors"), ("red badge", "staff"),
         ("gold badge", "directors"), ("grey badge", "interns")]


@pytest.fixture(scope="module")
def user_knowledge(tmp_path_factory):
    """A folder of documents and a JSONL of questions about them."""
    root = tmp_path_factory.mktemp("knowledge")
    docs = root / "docs"
    docs.mkdir()
    for colour, group in FACTS:
        (docs / f"{colour.split()[0]}.md").write_text(
            f"# The {colour}\nThe {colour} is issued to {group} at the front desk.")
    with (root / "qa.jsonl").open("w") as out:
        for n in range(4):
            for colour, group in FACTS:
                out.write(json.dumps({"instruction": f"Question {n}: who gets the {colour}?",
                                      "output": group}) + "\n")
    return root


def test_rag_on_a_task_without_documents_says_how_to_give_some(tmp_path):
    result = run_suites(["--approach=rag"], tmp_path)
    assert result.returncode == 4
    assert "task 'sentiment' has no document corpus" in result.stderr
    assert "--set rag.corpus=PATH" in result.stderr


def test_only_approaches_that_build_on_candidates_go_after_a_plus(tmp_path):
    result = run_suites(["--approach=zero-shot+lora"], tmp_path)
    assert result.returncode == 4
    assert "'lora' cannot be applied on top of another approach" in result.stderr
    assert "approaches that can: distill, dpo, rag, rlhf" in result.stderr
    misspelt = run_suites(["--approach=lora+rga"], tmp_path)
    assert "Did you mean 'rag'" in misspelt.stderr


def test_rag_and_lora_plus_rag_over_a_users_corpus(user_knowledge, tiny_model_dir, tmp_path):
    result = run_suites([
        "--approach=rag,lora+rag", f"--task={user_knowledge / 'qa.jsonl'}", "--budget=smoke",
        f"--model={tiny_model_dir}", "--results=r.db", "--set", "rag.retriever=bm25",
        "--set", f"rag.corpus={user_knowledge / 'docs'}", "--set", "rag.top_k=2",
        "-k", "generation or recall", "-rs",
    ], tmp_path, env={"TUNEBENCH_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout + result.stderr
    db = sqlite3.connect(tmp_path / "r.db")
    runs = dict(db.execute("SELECT approach, config_json FROM runs WHERE status = 'finished'"))
    assert set(runs) == {"rag", "lora+rag"}
    composed = json.loads(runs["lora+rag"])
    assert composed["lora"]["r"] == 16 and composed["rag"]["top_k"] == 2
    assert json.loads(runs["rag"])["corpus"].endswith("docs")

    def metric(approach, name):
        return db.execute(
            "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id "
            "WHERE r.approach = ? AND m.name = ?", (approach, name)).fetchone()

    for approach in ("rag", "lora+rag"):
        assert metric(approach, "index_bytes")[0] > 0
        assert metric(approach, "retrieval_ms")[0] > 0
        assert metric(approach, "gen_accuracy") is not None
    assert metric("lora+rag", "trainable_params")[0] > 0  # the fine-tuned part's facts
    assert metric("rag", "trainable_params") is None
    # The user's questions carry no gold passages: recall is skipped, saying why.
    assert "has no gold passages" in result.stdout


def test_kb_qa_retrieval_and_knowledge_update(tiny_model_dir, tmp_path):
    result = run_suites([
        "--approach=zero-shot,rag", "--task=kb-qa", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "--set", "rag.retriever=bm25", "-k", "not choice",
    ], tmp_path, env={"TUNEBENCH_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout + result.stderr
    db = sqlite3.connect(tmp_path / "r.db")
    metrics = {(approach, name): value for approach, name, value in db.execute(
        "SELECT r.approach, m.name, m.value FROM metrics m JOIN runs r ON r.id = m.run_id")}
    # BM25 finds most gold passages of the fictional company's questions.
    assert metrics["rag", "recall_at_k"] > 0.7
    assert ("zero-shot", "recall_at_k") not in metrics
    assert metrics["rag", "reads_documents"] == 1 and metrics["zero-shot", "reads_documents"] == 0
    for approach in ("zero-shot", "rag"):
        for name in ("old_facts_before", "new_facts_after", "old_facts_after", "f1",
                     "gen_accuracy[unanswerable]"):
            assert 0 <= metrics[approach, name] <= 1
    parts = {row[0] for row in db.execute("SELECT DISTINCT suite FROM examples")}
    assert {"knowledge_update.before", "knowledge_update.after", "retrieval"} <= parts
    # The measurement suites measure the RAG candidate like any other, latency split in two.
    latency = dict(db.execute(
        "SELECT m.name, m.value FROM metrics m JOIN runs r ON r.id = m.run_id "
        "WHERE r.approach = 'rag' AND m.suite = 'latency'"))
    assert latency["retrieval_ms"] > 0 and latency["model_ms"] > 0
    assert latency["latency_p50_ms"] > 0
    forgetting = {name for (approach, name) in metrics if approach == "rag"}
    assert {"forgetting_delta", "perplexity", "overfit_verdict"} <= forgetting
