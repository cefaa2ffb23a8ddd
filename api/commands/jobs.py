"""``vidsonar jobs``: ingestion jobs, CLI runs (kind ``cli``) and server jobs alike."""

from __future__ import annotations

import json

import click

from api.clikit import archive_from, fail_cleanly


#: who takes an interrupted job up again, by kind (storage.jobs.KINDS)
TAKEN_UP_BY = {"cli": "the next `vidsonar ingest` of its paths redoes its files",
               "upload": "the server runs it again when it starts",
               "paths": "the server runs it again when it starts"}


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
    """Recent ingestion jobs, newest first, and the state of the files they were given.

    A job marked running whose process is gone (killed; on another machine, its lease in the
    catalog expired: storage.leases) is shown as interrupted, a CLI run and a server job alike
    (JSON: ``interrupted``; ``status`` is the catalog's). Listing writes nothing, for either
    kind: the row is settled by whoever takes the job up again (the next `vidsonar ingest`
    marks a killed CLI run failed; a starting server runs its jobs again), and a listing may
    run where it cannot write.
    """
    from storage.items import ItemStore
    from storage.jobs import RUNNING, JobStore
    catalog = archive_from(ctx).catalog
    store = JobStore(catalog)
    liveness = store.liveness
    rows = store.list(limit, status)
    items = ItemStore(catalog).counts()
    if as_json:
        out = []
        for j in rows:
            d = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in j.__dict__.items()}
            d["alive"] = liveness.alive(j.owner) if j.status == RUNNING else None
            d["interrupted"] = j.interrupted(liveness)
            out.append(d)
        click.echo(json.dumps({"jobs": out, "items": items}))
        return
    click.echo(f"files: {items['done']} done, {items['failed']} failed, {items['pending']} pending")
    for j in rows:
        state = (f"interrupted: its process is gone; {TAKEN_UP_BY[j.kind]}" if j.interrupted(liveness)
                 else f"running {where(j.owner)}" if j.status == RUNNING else j.status)
        when = j.started_at.strftime("%Y-%m-%d %H:%M:%S") if j.started_at else "-"
        click.echo(f"{j.id:>5}  {j.kind:<6} {when}  {j.done}/{j.total} files: {j.ingested} ingested, "
                   f"{j.skipped} skipped, {j.failed} failed  [{state}]")
        for e in j.errors[:5]:
            click.echo(f"         failed: {e.get('error')}")


def where(owner: str | None) -> str:
    """Which machine and process run a job, for a reader: ``on HOST, pid N``."""
    from storage.owners import Owner
    parsed = Owner.parse(owner)
    return f"on {parsed.host}, pid {parsed.pid}" if parsed else "(its process unknown)"
