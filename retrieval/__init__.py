"""Guideline retrieval: ingestion, chunking, dense + BM25 indexes, hybrid search."""
