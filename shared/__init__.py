"""rag-papers shared library: everything the API and the workers both stand on.

Rooms, lowest first; imports run one way, down this list (tests/unit/test_layout.py):

    settings, errors, keys       configuration, the error tree, every Redis key
    identity, documents          corpus names, hashes, point ids; parsed documents and chunks
    chunking, parsing/           documents into chunks; files into documents (and pages to PNG)
    telemetry/                   metrics (summed in Redis across processes) and JSON logs
    vectors/, cache/, state/     embedder (ONNX or torch), BM25, stores; cache tiers; jobs,
    auth/, generation/           catalog, chat sessions; API keys; LLM generators, grounding
    resources                    one process's clients, built once at its entry point
    ingest/, search/, backup     the ingestion stages; ranking, retrieval, answers, chat; backups
    tasks/                       Celery: app, task bindings, heartbeats, leases, stall watchdog
"""
