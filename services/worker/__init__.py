"""The Celery worker service: the app, its queues, and thin tasks over shared/ingest."""
