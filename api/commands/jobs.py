"""``vidsonar jobs``: ingestion jobs, CLI runs (kind ``cli``) and server jobs alike."""

from __future__ import annotations

import json

import click

from api.clikit import archive_from, fail_cleanly


def register(main: click.Group) -> None:
    main.add_command(jobs)


@click.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--status", type=click.Choice(["queued", "running", "done", "failed"]),
              help="Only jobs in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def jobs(ctx: click.Context, limit: int, status: str | None, as_json: bool) -> None:
    """Recent ingestion jobs, newest first, and the state of the files they were given."""
    from storage.items import ItemStore
    from storage.owners import owner_alive
    from storage.jobs import RUNNING, JobStore
    catalog = archive_from(ctx).catalog
    rows = JobStore(catalog).list(limit, status)
    items = ItemStore(catalog).counts()
    if as_json:
        out = []
        for j in rows:
            d = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in j.__dict__.items()}
            d["alive"] = owner_alive(j.owner) if j.status == RUNNING else None
            out.append(d)
        click.echo(json.dumps({"jobs": out, "items": items}))
        return
    click.echo(f"files: {items['done']} done, {items['failed']} failed, {items['pending']} pending")
    for j in rows:
        state = j.status
        if j.status == RUNNING and not owner_alive(j.owner):
            state = "running (process gone: the next ingest finishes its files)"
        when = j.started_at.strftime("%Y-%m-%d %H:%M:%S") if j.started_at else "-"
        click.echo(f"{j.id:>5}  {j.kind:<6} {when}  {j.done}/{j.total} files: {j.ingested} ingested, "
                   f"{j.skipped} skipped, {j.failed} failed  [{state}]")
        for e in j.errors[:5]:
            click.echo(f"         failed: {e.get('error')}")
