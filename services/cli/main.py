"""`rag`: run the service and use it from a terminal."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from services.cli.client import ApiClient, ApiError, client_from_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(help="rag-papers: retrieval-augmented answers over research papers.",
                  no_args_is_help=True)
jobs_app = typer.Typer(help="Ingestion jobs.", no_args_is_help=True)
cache_app = typer.Typer(help="The Redis cache tiers.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(cache_app, name="cache")
out = Console()
err = Console(stderr=True)


def api(*, timeout: float | None = None) -> ApiClient:
    return client_from_env() if timeout is None else client_from_env(timeout=timeout)


def fail(exc: ApiError) -> None:
    err.print(f"[red]error:[/] {exc.detail or exc.code}")
    raise typer.Exit(2)


# ---- running the service -----------------------------------------------------------------


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="API bind address [RAG_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="API port [RAG_PORT].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder [RAG_DATA_DIR].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [RAG_WORKERS].")] = None,
    corpus_root: Annotated[
        Path | None, typer.Option(help="Ingest paths must lie inside [RAG_CORPUS_ROOT].")
    ] = None,
    ui_port: Annotated[int | None, typer.Option(help="Web UI port [RAG_UI_PORT].")] = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Do not start the web UI.")] = False,
    llm: Annotated[str | None, typer.Option(
        help="Serve this .gguf model (or 'smollm2') with llama.cpp and answer with it "
        "[RAG_LLM_GGUF].")] = None,
    llm_threads: Annotated[int | None, typer.Option(
        help="Threads of the llama.cpp server [RAG_LLM_THREADS].")] = None,
) -> None:
    """Start everything on embedded defaults: Redis, the store, the API, workers and the UI."""
    from services.cli.up import run_up
    from shared.settings import Settings, warn_unknown_settings

    for message in warn_unknown_settings():
        err.print(f"[yellow]warning:[/] {message}")
    settings = Settings()
    raise typer.Exit(run_up(
        host=host or settings.host,
        port=settings.port if port is None else port,
        data_dir=data_dir or settings.data_dir,
        workers=settings.workers if workers is None else workers,
        corpus_root=corpus_root or settings.corpus_root,
        ui_port=None if no_ui else (settings.ui_port if ui_port is None else ui_port),
        llm=llm or settings.generation.llm_gguf,
        llm_threads=llm_threads or settings.generation.llm_threads,
    ))


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port [RAG_UI_PORT].")] = None,
) -> None:
    """Run the web UI (Streamlit) against the API at RAG_API_URL."""
    import subprocess

    from services.ui.launch import ui_command
    from shared.settings import ClientSettings, Settings

    command = ui_command(ClientSettings().api_url, port or Settings().ui_port, host=host)
    raise typer.Exit(subprocess.call(command))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [RAG_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [RAG_PORT].")] = None,
) -> None:
    """Run the API only (RAG_REDIS_URL must point at Redis)."""
    import uvicorn

    from services.api.main import create_app
    from shared.auth import AuthSetupError, decide_auth
    from shared.settings import Settings
    from shared.telemetry.logging import configure_logging

    settings = Settings()
    configure_logging("api", settings.telemetry.log_format)
    settings = settings.model_copy(update={"host": host or settings.host})  # auth auto reads it
    try:
        app_ = create_app(settings)
    except AuthSetupError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    err.print(escape(decide_auth(settings.security, settings.host).describe()), soft_wrap=True)
    uvicorn.run(app_, host=settings.host,
                port=settings.port if port is None else port, loop="uvloop", http="httptools",
                log_level="info", access_log=False, timeout_graceful_shutdown=10,
                log_config=None)


@app.command()
def worker(
    name: Annotated[str | None, typer.Option(help="Worker name in logs and /health [RAG_WORKER_NAME].")] = None,
    concurrency: Annotated[int, typer.Option(help="Pool processes.")] = 1,
) -> None:
    """Run a Celery worker process (RAG_REDIS_URL must point at Redis)."""
    from services.worker.app import run_worker
    from shared.settings import Settings
    from shared.telemetry.logging import configure_logging

    settings = Settings()
    configure_logging("worker", settings.telemetry.log_format)
    if name:
        settings = settings.model_copy(update={"worker_name": name})
    run_worker(settings=settings, name=settings.worker_name or "worker", concurrency=concurrency)


# ---- ingestion -----------------------------------------------------------------------------


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A folder (recursive) or a file.")],
    corpus: Annotated[str, typer.Option(help="Corpus name.")] = "default",
    sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose files are gone.")] = False,
    upload: Annotated[bool, typer.Option("--upload", help="Send the files instead of the path.")] = False,
    password: Annotated[list[str] | None, typer.Option(help="Password for encrypted PDFs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final job as JSON.")] = False,
) -> None:
    """Ingest papers and show the job's progress live."""
    client = api()
    passwords = password or []
    try:
        job_id = None
        if not upload:
            try:
                job_id = client.start_ingest(str(path.resolve()), corpus=corpus, sync=sync,
                                             passwords=passwords)
            except ApiError as exc:
                if exc.status != 400 or not path.exists():
                    raise
                err.print(f"[yellow]the server cannot read {path}[/] ({exc.detail}); uploading")
        if job_id is None:
            files = [path] if path.is_file() else _local_files(path)
            if not files:
                err.print(f"[red]error:[/] no ingestible files in {path}")
                raise typer.Exit(2)
            accepted = client.upload(files, corpus=corpus, passwords=passwords)
            for rejected in accepted.get("rejected", []):
                err.print(f"[yellow]rejected[/] {rejected['file']}: {rejected['error']}")
            job_id = accepted["job_id"]
        record = follow(client, job_id, quiet=as_json)
    except ApiError as exc:
        fail(exc)
        return
    if as_json:
        out.print_json(json.dumps(record))
    else:
        _print_job_summary(record)
    raise typer.Exit(0 if record["state"] == "succeeded" else 1)


def _local_files(folder: Path) -> list[Path]:
    from shared.ingest.sources import list_files

    return list_files(folder)


def follow(client: ApiClient, job_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Follow a job's SSE stream with a progress bar; return its final record."""
    record: dict[str, Any] = {}
    with Progress(
        TextColumn("[bold]{task.fields[stage]:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=False,
    ) as bar:
        task = bar.add_task("ingest", total=1.0, stage="queued", detail="")
        for _, record in client.events(job_id):
            detail = (f"files {record['files_done']}/{record['files_total']}  "
                      f"chunks {record['chunks_embedded']}/{record['chunks_total']}")
            bar.update(task, completed=record["progress"], stage=record["stage"], detail=detail)
    return client.job(job_id)


def _print_job_summary(record: dict[str, Any]) -> None:
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(record["state"], "white")
    out.print(f"job {record['job_id']}: [{colour}]{record['state']}[/] - {record['message']}")
    out.print(
        f"files {record['files_done']}/{record['files_total']} ({record['files_failed']} failed), "
        f"chunks indexed {record['chunks_indexed']}, embeddings computed "
        f"{record['embeddings_computed']}, from cache {record['embeddings_cached']}"
    )
    for e in record["errors"]:
        out.print(f"  [red]failed[/] {e['file']}: {e['error']}")


# ---- search and ask --------------------------------------------------------------------------


@app.command()
def search(
    query: str,
    corpus: Annotated[str, typer.Option()] = "default",
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25")] = "hybrid",
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search a corpus."""
    try:
        result = api().search(query, corpus=corpus, top_k=top_k, mode=mode, use_cache=not no_cache)
    except ApiError as exc:
        fail(exc)
        return
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table("#", "score", "paper", "page", "passage", show_lines=True)
    for i, r in enumerate(result["results"], 1):
        table.add_row(str(i), f"{r['score']:.3f}", r["title"] or r["source"], str(r["page"]),
                      (r["text"] or "")[:300])
    out.print(table)


@app.command()
def ask(
    question: str,
    corpus: Annotated[str, typer.Option()] = "default",
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Print the answer whole.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ask a question; the answer streams in and cites paper and page."""
    from services.cli.chat import print_answer, render_stream

    body = {"corpus": corpus, "top_k": top_k, "use_cache": not no_cache}
    try:
        if as_json or no_stream:
            result = api(timeout=180).ask(question, **body)
        else:
            render_stream(api().stream("/ask", {"question": question, **body}))
            return
    except ApiError as exc:
        fail(exc)
        return
    if as_json:
        out.print_json(json.dumps(result))
        return
    print_answer(result)


@app.command()
def corpora(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List corpora with their document and chunk counts."""
    try:
        rows = api().corpora()
    except ApiError as exc:
        fail(exc)
        return
    if as_json:
        out.print_json(json.dumps({"corpora": rows}))
        return
    table = Table("corpus", "documents", "chunks", "version")
    for r in rows:
        table.add_row(r["name"], str(r["documents"]), str(r["chunks"]), str(r["version"]))
    out.print(table)


@app.command()
def health() -> None:
    """Show the service's health; exit 1 when degraded."""
    try:
        status, body = api().health()
    except Exception as exc:  # noqa: BLE001
        err.print(f"[red]unreachable:[/] {exc}")
        raise typer.Exit(2) from None
    out.print_json(json.dumps(body))
    raise typer.Exit(0 if status == 200 else 1)


# ---- jobs ----------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    try:
        rows = api().jobs(state=state, limit=limit)
    except ApiError as exc:
        fail(exc)
        return
    if as_json:
        out.print_json(json.dumps({"jobs": rows}))
        return
    table = Table("job", "state", "corpus", "progress", "files", "failed", "chunks", "message")
    for r in rows:
        table.add_row(r["job_id"], r["state"], r["corpus"], f"{r['progress']:.0%}",
                      f"{r['files_done']}/{r['files_total']}", str(r["files_failed"]),
                      str(r["chunks_indexed"]), r["message"])
    out.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str) -> None:
    try:
        out.print_json(json.dumps(api().job(job_id)))
    except ApiError as exc:
        fail(exc)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    try:
        record = api().cancel(job_id)
    except ApiError as exc:
        fail(exc)
        return
    out.print(f"job {job_id}: {record['state']}")


@jobs_app.command("retry")
def jobs_retry(job_id: str) -> None:
    try:
        accepted = api().retry(job_id)
    except ApiError as exc:
        fail(exc)
        return
    out.print(f"retrying as job {accepted['job_id']}")


# ---- cache -----------------------------------------------------------------------------------------


@cache_app.command("stats")
def cache_stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    try:
        stats = api().cache_stats()
    except ApiError as exc:
        fail(exc)
        return
    if as_json:
        out.print_json(json.dumps(stats))
        return
    table = Table("tier", "keys", "bytes", "hits", "misses", "hit rate")
    for tier, s in [*stats["tiers"].items(), ("total", stats["totals"])]:
        table.add_row(tier, str(s["keys"]), str(s["bytes"]), str(s["hits"]), str(s["misses"]),
                      f"{s['hit_rate']:.1%}")
    out.print(table)


@cache_app.command("purge")
def cache_purge(tier: Annotated[str, typer.Argument(help="all, embeddings, retrieval or answers")]) -> None:
    try:
        result = api().cache_purge(tier)
    except ApiError as exc:
        fail(exc)
        return
    for name, n in result["purged"].items():
        out.print(f"{name}: {n} keys removed")


from services.cli import chat as chat_cli  # noqa: E402 - registers `rag chat` on the app above
from services.cli import (  # noqa: E402 - register commands on the app above
    eval_answers,  # noqa: E402 - registers `rag eval-answers`
    evaluate,
    ops,
)
from services.cli import keys as keys_cli  # noqa: E402 - registers `rag keys` on the app above

evaluate.register(app)
keys_cli.register(app)
ops.register(app)
chat_cli.register(app)
eval_answers.register(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":
    sys.exit(app())
