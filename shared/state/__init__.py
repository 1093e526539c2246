"""Durable state in Redis: ingestion jobs (records, events, cancel flags) and the corpus
catalog (documents, source names, versions, the per-corpus lock)."""
