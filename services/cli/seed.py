"""Seed-compatible commands: `rag-ingest --dir PATH`, `rag-serve --port P`, `rag-cache --stats`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from services.cli import main as cli


def _ingest(
    dir: Annotated[Path, typer.Option("--dir", help="Folder of papers.")],
    corpus: Annotated[str, typer.Option()] = "default",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    cli.ingest(dir, corpus=corpus, sync=False, upload=False, password=None, as_json=as_json)


def _serve(
    port: Annotated[int, typer.Option()] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    cli.serve(host=host, port=port)


def _cache(
    stats: Annotated[bool, typer.Option("--stats")] = False,
    purge: Annotated[str | None, typer.Option("--purge")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    if purge:
        cli.cache_purge(purge)
    if stats or not purge:
        cli.cache_stats(as_json=as_json)


def rag_ingest() -> None:
    typer.run(_ingest)


def rag_serve() -> None:
    typer.run(_serve)


def rag_cache() -> None:
    typer.run(_cache)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(rag_ingest())
