"""`rag keys create|list|revoke`: API keys, through the API (RAG_API_KEY must be an admin key)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.cli.client import ApiError, client_from_env

keys_app = typer.Typer(help="API keys (needs an admin key in RAG_API_KEY).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _fail(exc: ApiError) -> None:
    err.print(f"[red]error:[/] {escape(exc.detail or exc.code)}", soft_wrap=True)
    raise typer.Exit(2)


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="reader, writer or admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    corpus: Annotated[
        list[str] | None, typer.Option(help="A corpus the key may use (repeat); none: every one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue a key. It is printed once: store it now."""
    try:
        created = client_from_env().create_key(role=role, name=name, corpora=corpus)
    except ApiError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(created))
        return
    scope = ", ".join(created["corpora"]) if created["corpora"] else "every corpus"
    err.print(
        f"{created['role']} key {created['id']} ({escape(created['name'])}, {scope}); "
        "shown this once:"
    )
    typer.echo(created["key"])


@keys_app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every issued key, masked."""
    try:
        rows = client_from_env().keys()
    except ApiError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps({"keys": rows}))
        return
    table = Table("id", "name", "role", "corpora", "key")
    for r in rows:
        table.add_row(
            r["id"],
            escape(r["name"]),
            r["role"],
            ", ".join(r["corpora"]) if r["corpora"] else "all",
            r["masked"],
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `rag keys list`).")],
) -> None:
    """Revoke a key: it stops working at once."""
    try:
        record = client_from_env().revoke_key(key_id)
    except ApiError as exc:
        _fail(exc)
        return
    out.print(f"revoked {record['id']} ({escape(record['name'])})")


def register(app: typer.Typer) -> None:
    """Add `rag keys` to the CLI."""
    app.add_typer(keys_app, name="keys")
