"""rag-papers shared library: everything the API and the workers both stand on.

Rooms, lowest first; imports run one way, down this list (tests/unit/test_layout.py):

    settings, errors, keys       configuration, the error tree, every Redis key
    identity, documents          corpus names, hashes, point ids; parsed documents and chunks
    chunking, parsing/           documents into chunks; files into documents
    vectors/, cache/, state/     embedder, BM25, stores; cache tiers; jobs and catalog
    resources                    one process's clients, built once at its entry point
    ingest/, search/             the ingestion stages; ranking, retrieval and answers
    tasks/                       Celery: app, task bindings, heartbeats, stall watchdog
"""
