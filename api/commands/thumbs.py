"""``vidsonar thumbs``: count the snippets whose thumbnail went missing or was damaged;
``--repair`` makes them again."""

from __future__ import annotations

import json

import click

from api.clikit import FILES_FAILED, archive_from, fail_cleanly


def register(main: click.Group) -> None:
    main.add_command(thumbs)


@click.command()
@click.option("--repair", is_flag=True,
              help="Make the missing and damaged thumbnails again from the video files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def thumbs(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Snippets whose thumbnail file is missing (a cleaned cache, a home restored without them)
    or damaged (not a whole JPEG: cut short by a crash).

    With --repair, each is made again from its video file, as ingestion made it; a video whose
    file is gone, no longer holds the footage ingested, or cannot be decoded, fails alone and
    is listed with the thumbnails it made before failing (exit status 3).
    """
    archive = archive_from(ctx, writes="repair thumbnails" if repair else None)
    if not repair:
        from indexer.thumb_repair import check_thumbnails
        check = check_thumbnails(archive.catalog, archive.home.thumbs)
        data = {"missing": sum(map(len, check.missing.values())),
                "damaged": sum(map(len, check.damaged.values())), "videos": len(check.to_make())}
        bad = data["missing"] + data["damaged"]
        click.echo(json.dumps(data) if as_json else
                   f"{data['missing']} thumbnails missing and {data['damaged']} damaged in "
                   f"{data['videos']} videos" + (" (--repair makes them again)" if bad else ""))
        return

    def progress(video_id: int, made: int, error: str | None) -> None:
        if not as_json:
            click.echo(f"video {video_id}: {made} made" + (f", then failed: {error}" if error else ""),
                       err=True)

    report = archive.repair_thumbnails(progress)
    if as_json:
        click.echo(json.dumps({"missing": report.missing, "damaged": report.damaged,
                               "made": report.made, "failed": report.failed}))
    else:
        click.echo(f"made {report.made} of {report.missing + report.damaged} thumbnails "
                   f"({report.missing} missing, {report.damaged} damaged); "
                   f"{len(report.failed)} videos failed")
        for f in report.failed:
            click.echo(f"  video {f['video_id']} ({f['path']}): {f['error']}")
    if report.failed:
        ctx.exit(FILES_FAILED)
