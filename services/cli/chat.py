"""`rag chat`: a conversation in the terminal, each answer streamed as it is written; and the
renderer `rag ask` shares with it.

Commands inside a chat: /new starts a new session, /export FILE saves the session as NDJSON,
/quit (or Ctrl-D) leaves. `--session ID` resumes a session.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from services.cli.client import ApiError, client_from_env

out = Console()
err = Console(stderr=True)


def _write(text: str) -> None:
    typer.echo(text, nl=False)  # flushed at once: tokens show as they come


def render_stream(events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Print an answer's tokens as they arrive, then its flags and citations; the final
    response object. An `error` event raises ApiError."""
    streamed = False
    for name, data in events:
        if name == "token":
            _write(data.get("text", ""))
            streamed = True
        elif name == "error":
            if streamed:
                _write("\n")
            raise ApiError(0, data.get("error", "error"), data.get("detail", ""))
        elif name == "final":
            print_answer(data, streamed=streamed)
            return data
    if streamed:
        _write("\n")
    raise ApiError(0, "stream_error", "the answer stream ended before the final answer")


def print_answer(final: dict[str, Any], *, streamed: bool = False) -> None:
    if final.get("fallback") and streamed:
        # What was streamed came from the model before it failed: the answer is this instead.
        _write("\n")
        err.print(
            f"[yellow]the model failed ({escape(str(final.get('fallback_reason')))}); "
            "the extractive answer instead:[/]"
        )
        streamed = False
    if streamed:
        _write("\n")
    else:
        out.print(final.get("answer", ""), markup=False, highlight=False, soft_wrap=True)
    flags = [str(final.get("generator") or "")]
    if final.get("model"):
        flags[0] += f" ({final['model']})"
    if final.get("abstained"):
        flags.append("abstained")
    if final.get("fallback"):
        flags.append(f"fallback: {final.get('fallback_reason')}")
    for field, label in (("unsupported_sentences", "unsupported"), ("invalid_citations", "invalid")):
        if final.get(field):
            flags.append(f"{final[field]} {label}")
    info = final.get("cache_info") or {}
    if info.get("answer_hit"):
        flags.append("answer cache hit")
    err.print(f"[dim]{escape(' · '.join(f for f in flags if f))}[/]", soft_wrap=True)
    citations = final.get("citations") or []
    if citations:
        out.print()
    for c in citations:
        out.print(
            f"[{c['n']}] {c.get('title') or c.get('source')} ({c.get('source')}), p. {c.get('page')}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def chat_command(
    corpus: Annotated[str | None, typer.Option(help="Corpus (default: the session's).")] = None,
    session: Annotated[str | None, typer.Option(help="Resume this session id.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
) -> None:
    """Talk with the papers: follow-up questions keep the conversation's context."""
    client = client_from_env(timeout=120)
    session_id = session
    if session_id:
        try:
            earlier = client.chat_session(session_id)
        except ApiError as exc:
            err.print(f"[red]error:[/] {escape(exc.detail or exc.code)}")
            raise typer.Exit(2) from None
        err.print(f"resuming session {session_id} ({len(earlier['messages'])} messages)")
    err.print("[dim]Ask a question. /new starts over, /export FILE saves, /quit leaves.[/]")
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            _write("\n")
            break
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/new":
            session_id = None
            err.print("[dim]new session[/]")
            continue
        if line.startswith("/export"):
            _export(client, session_id, line.removeprefix("/export").strip())
            continue
        body: dict[str, Any] = {"message": line, "top_k": top_k, "use_cache": not no_cache}
        if corpus:
            body["corpus"] = corpus
        if session_id:
            body["session_id"] = session_id
        try:
            final = render_stream(client.stream("/chat", body))
        except ApiError as exc:
            err.print(f"[red]error:[/] {escape(exc.detail or exc.code)}")
            if exc.status == 404:
                session_id = None  # expired or deleted: the next question starts a new one
            continue
        session_id = final.get("session_id") or session_id
        if final.get("rewritten_query"):
            err.print(f"[dim]searched for: {escape(final['rewritten_query'])}[/]")
    if session_id:
        err.print(f"[dim]session {session_id}[/]")


def _export(client: Any, session_id: str | None, target: str) -> None:
    if not session_id:
        err.print("[yellow]nothing to export yet[/]")
        return
    try:
        text = client.chat_export(session_id)
    except ApiError as exc:
        err.print(f"[red]error:[/] {escape(exc.detail or exc.code)}")
        return
    path = Path(target or f"chat-{session_id}.ndjson")
    path.write_text(text, encoding="utf-8")
    err.print(f"saved {len(text.splitlines()) - 1} messages to {escape(str(path))}")


def register(app: typer.Typer) -> None:
    """Add `rag chat` to the CLI."""
    app.command("chat")(chat_command)
