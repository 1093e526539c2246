"""The `rag` command line: runs the service (`up`, `serve`, `worker`) and talks to its API."""
