"""``vidsonar thumbs``: count the snippets whose thumbnail went missing; ``--repair`` makes them again."""

from __future__ import annotations

import json

import click

from api.clikit import FILES_FAILED, archive_from, fail_cleanly


def register(main: click.Group) -> None:
    main.add_command(thumbs)


@click.command()
@click.option("--repair", is_flag=True, help="Make the missing thumbnails again from the video files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def thumbs(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Snippets whose thumbnail file is missing (a cleaned cache, a home restored without them).

    With --repair, each is made again from its video file, as ingestion made it; a video whose
    file is gone, or cannot be decoded, fails alone and is listed (exit status 3).
    """
    archive = archive_from(ctx, writes="repair thumbnails" if repair else None)
    if not repair:
        from indexer.thumb_repair import missing_thumbnails
        missing = missing_thumbnails(archive.catalog, archive.home.thumbs)
        data = {"missing": sum(map(len, missing.values())), "videos": len(missing)}
        click.echo(json.dumps(data) if as_json else
                   f"{data['missing']} thumbnails missing in {data['videos']} videos"
                   + (" (--repair makes them again)" if data["missing"] else ""))
        return

    def progress(video_id: int, made: int | None, error: str | None) -> None:
        if not as_json:
            click.echo(f"video {video_id}: " + (f"failed: {error}" if error else f"{made} made"),
                       err=True)

    report = archive.repair_thumbnails(progress)
    if as_json:
        click.echo(json.dumps({"missing": report.missing, "made": report.made,
                               "failed": report.failed}))
    else:
        click.echo(f"made {report.made} of {report.missing} missing thumbnails; "
                   f"{len(report.failed)} videos failed")
        for f in report.failed:
            click.echo(f"  video {f['video_id']} ({f['path']}): {f['error']}")
    if report.failed:
        ctx.exit(FILES_FAILED)
