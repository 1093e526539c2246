"""What operators and container health checks run: `rag probe worker`, `rag backup`,
`rag restore`."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console()

probe_app = typer.Typer(
    help="Health checks for containers: exit 0 when healthy, 1 when not.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add `rag probe`, `rag backup` and `rag restore` to the CLI."""
    app.add_typer(probe_app, name="probe")
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


# ---- probes ----------------------------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@probe_app.command("worker")
def probe_worker(
    name: Annotated[
        str | None, typer.Option(help="Only the worker of this name (`rag worker --name`).")
    ] = None,
    max_age_s: Annotated[float, typer.Option(help="Oldest heartbeat that counts as fresh.")] = 15,
) -> None:
    """Exit 0 when a worker pool process on this host has a fresh heartbeat in Redis (it
    writes one every 5 s once its model is loaded), else 1. Needs RAG_REDIS_URL."""
    import redis

    from shared.keys import Keys
    from shared.settings import Settings
    from shared.tasks.heartbeat import live_workers

    settings = Settings()
    host = socket.gethostname()
    try:
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=5, socket_timeout=5
        )
        beats = live_workers(client, Keys(settings.key_prefix))
    except (redis.RedisError, RuntimeError) as exc:
        typer.echo(f"unhealthy: cannot read heartbeats: {exc}", err=True)
        raise typer.Exit(1) from None
    now = time.time()
    mine = [
        w for w in beats
        if w.get("host") == host and w.get("role", "worker") == "worker"
        and (name is None or str(w["name"]).split(":")[0] == name)
    ]
    fresh = [w for w in mine if now - float(w["at"]) <= max_age_s and _process_alive(int(w["pid"]))]
    if not fresh:
        who = f"worker {name!r}" if name else "worker"
        typer.echo(f"unhealthy: no fresh {who} heartbeat on {host} ({len(mine)} stale or dead)",
                   err=True)
        raise typer.Exit(1)
    for w in fresh:
        typer.echo(f"ok: {w['name']} on {host}, heartbeat {now - float(w['at']):.1f} s ago, "
                   f"queues {','.join(w['queues'])}")


# ---- backup and restore ---------------------------------------------------------------------


def _print_corpora(manifest: dict[str, Any]) -> None:
    table = Table("corpus", "version", "documents", "chunks")
    for corpus, c in sorted(manifest["corpora"].items()):
        table.add_row(corpus, str(c["version"]), str(c["documents"]), str(c["chunks"]))
    out.print(table)


def backup_command(
    path: Annotated[
        Path, typer.Argument(help="The .tar.gz to write, or a folder to write it in.")
    ],
) -> None:
    """Back up the running embedded deployment: its Redis keys, the store and uploads, taken
    consistently while it runs (index writes pause for the copy). Uses RAG_API_URL."""
    from services.cli.client import ApiClient, ApiError
    from shared.backup import read_manifest
    from shared.settings import ClientSettings

    dest = path / time.strftime("rag-backup-%Y%m%d-%H%M%S.tar.gz") if path.is_dir() else path
    if dest.exists():
        typer.echo(f"error: {dest} exists", err=True)
        raise typer.Exit(2)
    try:
        ApiClient(ClientSettings().api_url).download("POST", "/admin/backup", dest)
    except ApiError as exc:
        typer.echo(f"error: {exc.detail or exc.code}", err=True)
        raise typer.Exit(2) from None
    manifest = read_manifest(dest)
    typer.echo(f"backup {dest}: {manifest['redis_keys']} keys, {len(manifest['corpora'])} "
               f"corpora, {manifest['uploads']} uploaded files ({dest.stat().st_size} bytes)")
    _print_corpora(manifest)


def restore_command(
    path: Annotated[Path, typer.Argument(help="A backup written by `rag backup`.")],
    data_dir: Annotated[Path | None, typer.Option(help="Data folder [RAG_DATA_DIR].")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store, uploads or keys already there.")
    ] = False,
) -> None:
    """Restore a backup, with the service stopped, into a fresh data folder: the store and
    uploads into RAG_DATA_DIR, the keys into RAG_REDIS_URL or, when that is unset, into the
    embedded Valkey `rag up` starts on that folder. Then start the service on it."""
    import redis

    from services.cli.up import start_embedded_redis
    from shared.errors import RagError
    from shared.settings import Settings

    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    server: Any = None
    if settings.redis.url:
        url = settings.redis.url
    else:
        server = start_embedded_redis(settings.data_dir.resolve())
        url = server.connection_url
    client = redis.Redis.from_url(url)
    try:
        from shared.backup import restore_backup

        manifest = restore_backup(path, settings=settings, client=client, force=force)
    except RagError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.close()
        if server is not None:
            server.stop()
    typer.echo(f"restored {manifest['restored_keys']} keys (backup of {manifest['created_at']}) "
               f"and the store into {settings.data_dir.resolve()}")
    _print_corpora(manifest)
