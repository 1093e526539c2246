"""Ingestion as stages (task payloads, sources, typed staging, the stages): scan -> parse (per file) -> embed (per batch) -> index (per file) -> finalize.

Each stage is a plain function of (resources, message, dispatcher), idempotent under
redelivery; the Celery tasks in the services only unpack messages and call them.
"""
