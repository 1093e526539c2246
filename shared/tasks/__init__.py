"""Celery: the app shared by both sides (broker settings, queues, dispatch by name), the task
bindings over the ingest stages, worker heartbeats and the stall watchdog."""
