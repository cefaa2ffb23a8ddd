"""``vidsonar serve``: the HTTP API and web page; ``vidsonar bench http``: its search latency."""

from __future__ import annotations

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    main.add_command(serve)
    bench = main.get_command(None, "bench")
    if bench is not None:
        bench.add_command(http)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; 0.0.0.0 exposes it).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--ingest-root", "ingest_roots", multiple=True, type=click.Path(file_okay=False),
              help="A folder whose files may be ingested by path (repeatable; "
                   "else $VIDSONAR_INGEST_ROOTS).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
@fail_cleanly
def serve(ctx: click.Context, host: str, port: int, ingest_roots: tuple[str, ...],
          log_level: str) -> None:
    """Serve the search API and web page (settings from VIDSONAR_* variables, see the README)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        from vidsonar.errors import MissingDependencyError
        raise MissingDependencyError(exc.name or "fastapi", "`vidsonar serve`", "server") from exc
    from pydantic import ValidationError

    from api.server import ServerSettings, create_app
    from api.server.settings import resolve_keys
    from vidsonar.home import Home
    overrides = {k: v for k, v in {"home": ctx.obj["home"], "space": ctx.obj["space"],
                                   "index": ctx.obj.get("index"),
                                   "read_only": ctx.obj.get("read_only")}.items() if v}
    if ingest_roots:
        overrides["ingest_roots"] = list(ingest_roots)
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:
        raise click.UsageError(f"bad server setting: {exc}") from None
    home = Home.resolve(settings.home, settings.read_only or None)
    if not home.read_only:
        from storage.leases import lease_seconds
        lease_seconds()  # a bad $VIDSONAR_LEASE_SECONDS fails here, not in the worker's start-up
    if not home.db_url.startswith("sqlite"):
        # a database server that cannot be reached stops the start here, in one line, rather
        # than in a traceback from the app's start-up (a running server waits outages out)
        from storage.catalog import Catalog
        Catalog(home.db_url, read_only=home.read_only).engine.dispose()
    from storage.backends import parse_index_url
    if parse_index_url(settings.index).backend == "milvus":
        # the same for the index's Milvus server: unreachable, refusing us, or holding a
        # collection of another dimension (a Milvus Lite index of a read-only archive too)
        from search.archive import Archive
        backend = Archive(home, settings.space, index=settings.index).store.backend
        try:
            backend.open()
        finally:
            backend.close()
    keys, key_file = resolve_keys(settings, home.root, home.read_only)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    click.echo(f"vidsonar: http://{shown}:{port}/  (API docs at /docs; loading models...)", err=True)
    if home.read_only:
        click.echo(f"read-only archive ({home.read_only_reason}): searches and media only; "
                   "writes answer 409", err=True)
    elif key_file:
        click.echo(f"API key for uploads and deletes: {keys[0]}  (kept in {key_file})", err=True)
    elif settings.auth_disabled:
        click.echo("warning: API keys are disabled; anyone who can reach this port can write",
                   err=True)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)


@click.command()
@click.option("--seconds", default=30.0, show_default=True, help="How long to load the server.")
@click.option("--clients", default=16, show_default=True, help="Concurrent clients.")
@click.option("--url", help="Load a running server instead of starting one on the demo archive.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--while-ingesting", is_flag=True,
              help="Run a CLI ingest of fresh clips on the same archive during the load.")
@click.pass_context
@fail_cleanly
def http(ctx: click.Context, seconds: float, clients: int, url: str | None, as_json: bool,
         while_ingesting: bool) -> None:
    """Search latency through HTTP: p50/p99 with concurrent clients on loopback."""
    from benchmarks.http_load import main as run
    run(seconds=seconds, clients=clients, url=url, home=ctx.obj["home"], as_json=as_json,
        while_ingesting=while_ingesting)
