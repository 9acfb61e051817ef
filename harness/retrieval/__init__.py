"""Retrieval for RAG candidates: chunking, BM25/dense/hybrid retrievers with cached indexes,
and the candidate wrapper that puts retrieved passages into prompts."""
