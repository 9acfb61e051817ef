"""Chunking, the three retrievers on a tiny corpus with known answers, the index cache, the
RAG candidate wrapper, user corpora and their errors."""

import itertools
import json

import pytest

from harness.core.capabilities import ReadsDocuments, RewritesPrompts
from harness.data.records import DataError
from harness.measure.evaluate import score_by_generation
from harness.models.lm_candidate import LMCandidate
from harness.retrieval.candidate import RetrievalCandidate
from harness.retrieval.chunking import chunk_passages, load_corpus
from harness.retrieval.retrievers import RETRIEVERS, open_index, tokenize
from harness.tasks.base import Example, Passage, Task

CORPUS = [
    Passage("cafeteria", "Cafeteria", "The staff cafeteria serves breakfast from seven until "
            "ten in the morning and lunch from noon."),
    Passage("parking", "Parking permits", "A monthly parking permit for the north garage costs "
            "forty dollars and is renewed at the security desk."),
    Passage("vpn", "Remote access", "Connecting to the corporate VPN requires a hardware token "
            "for two-factor authentication."),
    Passage("leave", "Annual leave", "Employees accrue twenty-five days of paid holiday each "
            "year; unused days expire in March."),
    Passage("printer", "Printing", "Colour printers are on the third floor; badge in to "
            "release a print job."),
]


def test_short_passages_stay_whole_and_long_ones_overlap():
    words = [f"w{i}" for i in range(25)]
    chunks = chunk_passages([Passage("a", "T", "short text"),
                             Passage("b", "U", " ".join(words))], size=10, overlap=3)
    assert chunks[0].text == "short text" and chunks[0].passage_id == "a"
    long = [c.text.split() for c in chunks[1:]]
    assert all(len(c) == 10 for c in long)
    assert long[0][:3] == words[:3] and long[-1][-1] == "w24"  # the end is covered exactly
    assert all(a[-3:] == b[:3] for a, b in itertools.pairwise(long[:-1]))
    assert {c.passage_id for c in chunks[1:]} == {"b"} and all(c.title == "U" for c in chunks[1:])


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_chunk_settings_are_refused(size, overlap):
    with pytest.raises(ValueError, match=r"rag\.chunk"):
        chunk_passages(CORPUS, size, overlap)


def test_tokenizer_drops_stop_words_and_punctuation():
    assert tokenize("What is the price of the North garage?") == ["price", "north", "garage"]


@pytest.mark.parametrize("kind", sorted(RETRIEVERS))
@pytest.mark.parametrize(("query", "expected"), [
    ("How much is a parking permit for the north garage?", "parking"),
    ("How many days of paid holiday do employees get?", "leave"),
    ("What do I need for two-factor authentication on the VPN?", "vpn"),
])
def test_each_retriever_finds_the_passage_with_the_answer(kind, query, expected, tmp_path):
    retriever, _ = open_index(kind, chunk_passages(CORPUS, 50, 10), "all-MiniLM-L6-v2", tmp_path)
    hits = retriever.search([query], k=2)[0]
    assert len(hits) == 2
    assert retriever.chunks[hits[0][0]].passage_id == expected
    assert hits[0][1] >= hits[1][1]


def test_dense_retrieval_matches_meaning_without_shared_words(tmp_path):
    retriever, _ = open_index("dense", chunk_passages(CORPUS, 50, 10), "all-MiniLM-L6-v2",
                              tmp_path)
    [[(best, _), *_]] = retriever.search(["When can I get something to eat before work?"], k=3)
    assert retriever.chunks[best].passage_id == "cafeteria"


def test_index_is_built_once_and_reused_from_the_cache(tmp_path):
    chunks = chunk_passages(CORPUS, 50, 10)
    first, built = open_index("hybrid", chunks, "all-MiniLM-L6-v2", tmp_path)
    second, loaded = open_index("hybrid", chunks, "all-MiniLM-L6-v2", tmp_path)
    assert not built["index_cached"] and loaded["index_cached"]
    assert built["index_path"] == loaded["index_path"] and loaded["index_bytes"] > 0
    query = ["Where are the colour printers?"]
    assert first.search(query, 3) == second.search(query, 3)
    changed = chunk_passages([*CORPUS[:-1], Passage("printer", "Printing", "Moved.")], 50, 10)
    _, other = open_index("hybrid", changed, "all-MiniLM-L6-v2", tmp_path)
    assert not other["index_cached"] and other["index_path"] != built["index_path"]
    assert not list((tmp_path / "indexes").glob(".*"))  # no staging folders left behind


def rag_candidate(tiny_lm, tmp_path, **settings):
    options = {"retriever_kind": "bm25", "top_k": 2, "chunk_size": 50, "chunk_overlap": 10,
               "embedder": "all-MiniLM-L6-v2", "cache_dir": tmp_path} | settings
    candidate = RetrievalCandidate(LMCandidate(*tiny_lm), **options)
    candidate.use_corpus(CORPUS)
    return candidate


def question(text):
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_rag_candidate_puts_passages_before_the_question(tiny_lm, tmp_path):
    candidate = rag_candidate(tiny_lm, tmp_path)
    [prompt] = candidate.augment([question("How much is a parking permit?")])
    assert prompt[0] == {"role": "system", "content": "Be brief."}
    content = prompt[-1]["content"]
    assert content.index("[1] Parking permits: A monthly parking permit") < content.index(
        "How much is a parking permit?")
    assert "[3]" not in content and "I don't know" in content
    assert candidate.info["index_chunks"] == len(CORPUS)


class EchoTask(Task):
    name = "echo"
    description = "scores nothing"
    max_new_tokens = 4

    def load(self, seed):
        raise NotImplementedError


def test_latency_splits_into_retrieval_and_model_time(tiny_lm, tmp_path):
    candidate = rag_candidate(tiny_lm, tmp_path)
    examples = [Example(f"q{i}", tuple(question(f"Where is the printer {i}?")), "third floor")
                for i in range(3)]
    rows = score_by_generation(candidate, EchoTask(), examples)
    extra = rows[0]["extra"]
    assert extra["retrieval_ms"] > 0 and extra["model_ms"] > 0
    assert extra["retrieval_ms"] + extra["model_ms"] == pytest.approx(rows[0]["latency_ms"])
    assert candidate.timings["retrieval_seconds"] > 0


def test_swapping_the_corpus_changes_what_is_retrieved(tiny_lm, tmp_path):
    candidate = rag_candidate(tiny_lm, tmp_path)
    updated = [*CORPUS[:1], Passage("parking", "Parking permits", "A monthly parking permit "
                                    "now costs fifty-five dollars.")]
    assert candidate.use_corpus(updated)
    [[top, *_]] = candidate.retrieve(["How much is a parking permit?"])
    assert "fifty-five" in top.text and candidate.passages == updated
    assert isinstance(candidate, ReadsDocuments) and isinstance(candidate, RewritesPrompts)
    assert not isinstance(LMCandidate(*tiny_lm), ReadsDocuments)  # a plain model reads none


def test_user_corpus_from_a_folder_and_from_jsonl(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Expenses\nClaims are paid monthly.")
    (folder / "sub" / "b.txt").write_text("Badges are blue.")
    (folder / "ignored.pdf").write_text("x")
    passages = load_corpus(str(folder))
    assert [(p.id, p.title) for p in passages] == [("a.md", "Expenses"), ("sub/b.txt", "b")]
    lines = tmp_path / "docs.jsonl"
    lines.write_text(json.dumps({"id": "x", "title": "X", "text": "Some text."}) + "\n\n"
                     + json.dumps({"text": "More."}) + "\n")
    assert [(p.id, p.text) for p in load_corpus(str(lines))] == [("x", "Some text."),
                                                                  ("line3", "More.")]


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "a", "text": "ok"}\n{"id": "b", "title": "no text"}\n', r"docs.jsonl:2: .*\"text\""),
    ('{"id": "a", "text": "ok"}\nnot json\n', r"docs.jsonl:2: not valid JSON"),
    ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', r"'a' appears twice"),
])
def test_bad_user_corpus_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_corpus(str(path))


def test_empty_or_missing_corpus_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"no \.txt or \.md files"):
        load_corpus(str(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        load_corpus(str(tmp_path / "missing"))
