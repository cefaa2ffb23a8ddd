"""The ``vidsonar`` command line.

Every command takes ``--home`` (else $VIDSONAR_HOME, else ~/.vidsonar) and ``--space``
(else the archive's space, else ``lite``). ``--read-only`` (or $VIDSONAR_READ_ONLY=1; on its
own where the home cannot be written) opens the archive without writing to it: commands
that read work, those that write (ingest, delete, tag, reindex, demo, thumbs --repair) refuse
at once. ``--json`` prints one JSON object on stdout for scripts; errors go to stderr with exit
status 1 (2: a usage error; 3: ``ingest`` or ``thumbs --repair`` ran, but some or all of its
files failed).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from api.clikit import FILES_FAILED, ID, Seconds, archive_from, fail_cleanly, language, timecode


@click.group()
@click.option("--home", envvar="VIDSONAR_HOME", type=click.Path(file_okay=False),
              help="Data directory (catalog, index, thumbnails). Default: ~/.vidsonar")
@click.option("--space", envvar="VIDSONAR_SPACE", help="Concept space (see `vidsonar spaces`).")
@click.option("--index", "index", envvar="VIDSONAR_INDEX", default="faiss", show_default=True,
              help="Vector backend: 'faiss', or 'milvus:PATH.db' (Milvus Lite) / "
                   "'milvus:http://HOST:19530' (a Milvus server; token in $VIDSONAR_MILVUS_TOKEN).")
@click.option("--read-only", "read_only", is_flag=True, envvar="VIDSONAR_READ_ONLY",
              help="Open the archive without writing to it (search a replica or a snapshot); "
                   "on its own where the home cannot be written. Commands that write refuse.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="vidsonar")
@click.pass_context
def main(ctx: click.Context, home: str | None, space: str | None, index: str, read_only: bool,
         verbose: int) -> None:
    """vidsonar: find the moment in your footage by describing it, in any language."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"home": home, "space": space, "index": index, "read_only": read_only}


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--window", type=Seconds(positive=True), default=4.0, show_default=True,
              help="Snippet length in seconds.")
@click.option("--shots", type=click.Choice(["transnetv2", "scenedetect", "none"]), default=None,
              help="Shot detector whose cuts no snippet crosses; none: the fixed grid "
                   "[default: scenedetect, see README 'Snippets'].")
@click.option("--shot-threshold", type=float, default=None,
              help="Detector threshold (TransNetV2 probability, default 0.5; scenedetect 40).")
@click.option("--hop", type=Seconds(positive=True), default=None,
              help="Seconds between snippet starts, shorter than --window for overlapping snippets "
                   "(finer moments, window/hop times the vectors; the fixed grid, no shot "
                   "detection); default: no overlap.")
@click.option("--runner", type=click.Choice(["local", "sequential", "ray"]), default="local",
              show_default=True, help="local: decoding overlaps encoding; sequential: one file at "
              "a time; ray: Ray Data (a local cluster unless --ray-address).")
@click.option("--decoders", type=click.IntRange(min=1), default=None,
              help="Decoder threads (--runner local) [default: 1 beside a CPU encoder, "
                   "a quarter of the cores (2-8) beside a GPU one].")
@click.option("--ray-address", help="Ray cluster to run on (--runner ray), e.g. ray://head:10001 or auto.")
@click.option("--encoders", default=1, show_default=True, help="Encoder actors (--runner ray).")
@click.option("--gpus-per-encoder", default=0.0, show_default=True,
              help="GPUs per encoder actor (--runner ray; dropped with a warning if the cluster has none).")
@click.option("--checkpoint-every", type=int, envvar="VIDSONAR_CHECKPOINT_EVERY",
              help="Save the index every N videos (default 50; 0: off).")
@click.option("--checkpoint-seconds", type=float, envvar="VIDSONAR_CHECKPOINT_SECONDS",
              help="Save the index every M seconds (default 60; 0: off).")
@click.option("--allow-mixed-encoders", is_flag=True,
              help="Add vectors to a space whose vectors here another encoder made (new weights, a "
                   "retrained projector); refused by default, see README 'Using it'.")
@click.pass_context
@fail_cleanly
def ingest(ctx: click.Context, paths: tuple[str, ...], as_json: bool, window: float, runner: str,
           ray_address: str | None, encoders: int, gpus_per_encoder: float,
           checkpoint_every: int | None, checkpoint_seconds: float | None, shots: str | None,
           shot_threshold: float | None, hop: float | None, decoders: int | None,
           allow_mixed_encoders: bool) -> None:
    """Ingest video files and folders (recursively); a killed run resumes where it stopped.

    Exits with status 3 when some or all files failed (after the report, which lists them),
    1 when the command itself failed.
    """
    from indexer.discover import discover
    from indexer.runners.ray import RayOptions
    from indexer.stages import Checkpoints
    archive = archive_from(ctx, writes="ingest")
    options = dict(runner=runner, decoders=decoders, allow_mixed_encoders=allow_mixed_encoders,
                   checkpoints=Checkpoints.from_env(checkpoint_every, checkpoint_seconds),
                   ray_options=RayOptions(ray_address, encoders, gpus_per_encoder))
    files = discover(paths)
    _warn_empty_folders(paths, files)
    bar = None
    if sys.stderr.isatty() and not as_json:
        from tqdm import tqdm
        bar = tqdm(total=len(files), unit="video", file=sys.stderr)
    def progress(path, outcome):
        if bar is not None:
            bar.set_postfix_str(f"{outcome}: {path.name}"[:40])
            bar.update(1)
    report = archive.ingestor(window=window, hop=hop, shots=shots, shot_threshold=shot_threshold,
                              **options).ingest(paths, progress=progress)
    if bar is not None:
        bar.close()
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        click.echo(f"ingested {report.ingested} videos ({report.snippets} snippets), "
                   f"skipped {report.skipped} already ingested, failed {len(report.failed)}; "
                   f"{report.media_seconds:.1f} s of footage in {report.wall_seconds:.1f} s "
                   f"({report.realtime_factor:.1f}x real time)")
        if report.replaced:
            click.echo(f"  replaced {report.replaced} videos whose files hold other bytes now")
        if report.ingested:
            click.echo(f"  encoder: {report.encoder}")
        if report.nodes:
            worked = [n for n in report.nodes if n["videos_read"] or n["snippets_encoded"]]
            click.echo(f"  ray: {len(worked)} node{'s' * (len(worked) != 1)} read "
                       f"{sum(n['videos_read'] for n in worked)} videos and embedded "
                       f"{sum(n['snippets_encoded'] for n in worked)} snippets"
                       + (", the driver's node among them" if any(n["driver"] for n in worked) else ""))
        for failure in report.failed:
            click.echo(f"  failed: {failure['error']}", err=True)
    if report.failed:
        ctx.exit(FILES_FAILED)


def _warn_empty_folders(paths: tuple[str, ...], files: list[Path]) -> None:
    """Name each given folder with no video file in it (indexer.discover's suffixes) on stderr:
    "ingested 0 videos" alone does not say why."""
    from indexer.discover import discover
    for raw in paths:
        folder = Path(raw).expanduser()
        # a file found under it settles it; else it may still hold one that another path found
        # first (discover keeps one path per file), so only then is it walked again on its own
        if folder.is_dir() and not any(f.is_relative_to(folder) for f in files) and not discover([folder]):
            click.echo(f"warning: no video files found in {raw}", err=True)


@main.command()
@click.argument("query", required=False)
@click.option("--lang", callback=language,
              help="Query language: FLORES-200 code (fra_Latn), fr, fra or French. Default: detected.")
@click.option("-k", default=10, show_default=True, help="Number of hits.")
@click.option("--image", type=click.Path(dir_okay=False), help="Search by example: an image file.")
@click.option("--video", "video_spec", help="Search by example: a video, PATH or PATH:START-END (seconds).")
@click.option("--like", type=ID, help="Search by example: an ingested snippet's id.")
@click.option("--rerank", type=click.Choice(["none", "ac-candidates", "ac-anchors", "roundtrip"]),
              help="Rerank candidates by alignment consistency (see README).")
@click.option("--moments/--snippets", default=True, show_default=True,
              help="Merge adjacent hit snippets of a video into one moment.")
@click.option("--group-by-video", is_flag=True, help="At most one hit per video.")
@click.option("--keep-duplicates", is_flag=True, help="Do not collapse near-identical footage.")
@click.option("--snap-shots/--no-snap-shots", default=True, show_default=True,
              help="Stretch a moment to its shot's cuts when the whole shot matches.")
@click.option("--video-id", "video_ids", type=ID, multiple=True, help="Only these videos (repeatable).")
@click.option("--path", "path_glob", help="Only videos whose whole path matches this glob, e.g. "
              "'*/2024/*' (* and ? are the wildcards; [ and ] match themselves).")
@click.option("--min-duration", type=Seconds(), help="Only videos at least this long (seconds).")
@click.option("--max-duration", type=Seconds(), help="Only videos at most this long (seconds).")
@click.option("--after", type=click.DateTime(), help="Only videos ingested at or after this time (UTC).")
@click.option("--before", type=click.DateTime(), help="Only videos ingested before this time (UTC).")
@click.option("--tag", "tags", multiple=True, help="Only videos with this tag (repeatable: all must match).")
@click.option("--summaries", is_flag=True, help="Describe each hit (SONAR decoder; concept labels in lite).")
@click.option("--summary-lang", callback=language,
              help="Language of the summaries (default: the query's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def search(ctx: click.Context, query: str | None, lang: str | None, k: int, image: str | None,
           video_spec: str | None, like: int | None, rerank: str | None, moments: bool,
           group_by_video: bool, keep_duplicates: bool, snap_shots: bool, video_ids: tuple[int, ...],
           path_glob: str | None, min_duration: float | None, max_duration: float | None,
           after, before, tags: tuple[str, ...], summaries: bool, summary_lang: str | None,
           as_json: bool) -> None:
    """Find the moments that best match QUERY (or an example: --image, --video, --like)."""
    from storage.annotations import Filters
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise click.UsageError(f"--min-duration {min_duration:g} is above --max-duration "
                               f"{max_duration:g}: no video can match")
    searcher = archive_from(ctx).searcher()
    filters = Filters(video_ids=video_ids, path_glob=path_glob, min_duration=min_duration,
                      max_duration=max_duration, ingested_after=after, ingested_before=before,
                      tags=tags)
    common = dict(k=k, filters=filters, moments=moments, group_by_video=group_by_video,
                  collapse=not keep_duplicates, summaries=summaries, snap_shots=snap_shots)
    if image or video_spec or like is not None:
        if query:
            raise click.UsageError("give a QUERY or an example (--image/--video/--like), not both")
        result = searcher.search_example(image=image, video=video_spec, like=like,
                                         summary_lang=summary_lang or "eng_Latn", **common)
    elif query:
        result = searcher.search(query, lang=lang, rerank=rerank, summary_lang=summary_lang, **common)
    else:
        raise click.UsageError("give a QUERY, or an example with --image, --video or --like")
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    lang_note = result.lang or ""
    if result.lang_source == "detected" and result.detected_language:
        lang_note = f"detected {result.lang} ({result.detected_language['confidence']:.0%})"
    elif result.lang_source == "default":
        lang_note = f"{result.lang} (default)"
    click.echo(f"{len(result.hits)} hits for {result.query!r} ({result.space} space"
               f"{', ' + lang_note if lang_note else ''})")
    for hit in result.hits:
        click.echo(f"{hit.rank:>3}  {hit.score:6.3f}  {timecode(hit.start)}-{timecode(hit.end)}  "
                   f"{hit.video_path}  [video {hit.video_id}, snippet {hit.snippet_id}"
                   f"{', snapped to shot' if hit.snapped else ''}]")
        if hit.summary:
            click.echo(f"       {hit.summary['text']}")


@main.command()
@click.argument("snippet_id", type=ID)
@click.option("--lang", default="eng_Latn", show_default=True, callback=language,
              help="Language of the summary.")
@click.option("--beam-size", default=5, show_default=True)
@click.option("--max-len", default=64, show_default=True, help="Longest summary, in tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def summarize(ctx: click.Context, snippet_id: int, lang: str, beam_size: int, max_len: int,
              as_json: bool) -> None:
    """Describe a snippet in a language (cached in the catalog)."""
    summary = archive_from(ctx).searcher().summarize(snippet_id, lang, beam_size, max_len)
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
    else:
        click.echo(summary.text if summary.kind == "decoded" else f"[{summary.kind}] {summary.text}")


@main.command()
@click.argument("video_id", type=ID)
@click.argument("tags", nargs=-1)
@click.option("--remove", is_flag=True, help="Remove the tags instead.")
@click.pass_context
@fail_cleanly
def tag(ctx: click.Context, video_id: int, tags: tuple[str, ...], remove: bool) -> None:
    """Tag a video (search with --tag); with no TAGS, list its tags."""
    from storage.annotations import add_tags, remove_tags, tags_of
    from vidsonar.errors import NotFoundError
    catalog = archive_from(ctx, writes="tag videos" if tags else None).catalog
    if catalog.video(video_id) is None:  # listing or removing would otherwise print nothing
        raise NotFoundError(f"no video with id {video_id}")
    if not tags:
        now = tags_of(catalog, [video_id]).get(video_id, [])
    else:
        now = (remove_tags if remove else add_tags)(catalog, video_id, list(tags))
    click.echo(" ".join(now))


@main.command()
@click.option("--check-thumbnails", is_flag=True,
              help="Also count snippets whose thumbnail file is missing or damaged (lists every "
                   "video's folder).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def info(ctx: click.Context, check_thumbnails: bool, as_json: bool) -> None:
    """Counts, concept space, index type and size.

    Missing and damaged (not whole JPEG) thumbnails are counted only with --check-thumbnails
    (JSON: null otherwise): counting reads every snippet row, lists every video's folder and
    reads both ends of each file, too slow to do on each `info` of a large archive.
    `vidsonar thumbs --repair` makes them again.
    """
    data = archive_from(ctx).info(check_thumbnails=check_thumbnails)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"home:     {data['home']}" + (" (read-only)" if data["read_only"] else ""))
    click.echo(f"videos:   {data['videos']} ingested, {data['failed']} failed; {data['snippets']} snippets, "
               f"{data['hours']} h")
    idx = data["index"]
    click.echo(f"space:    {data['space']} ({idx['dim']}-d)")
    click.echo(f"index:    {idx['factory']} {idx['params']} with {idx['count']} vectors at {idx['path']}")
    for maker in data["vector_makers"]:
        runs = f"runs {maker['first_run']}-{maker['last_run']}"
        made_by = f"{maker['encoder']} [{maker['fingerprint']}]" if maker["fingerprint"] else "not recorded"
        click.echo(f"vectors:  {maker['videos']} videos ({runs}) made by {made_by}")
    if data["missing_thumbnails"] is not None:
        missing, damaged = data["missing_thumbnails"], data["damaged_thumbnails"]
        click.echo(f"thumbs:   {missing} missing, {damaged} damaged"
                   + (" (`vidsonar thumbs --repair` makes them again)" if missing or damaged else ""))
    if data["mixed_encoders"]:
        click.echo("warning:  this space's vectors here were made by more than one encoder; "
                   "queries compare with only one kind well", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@fail_cleanly
def spaces(as_json: bool) -> None:
    """List the concept spaces this installation knows."""
    from encoders.registry import get_space_config, list_spaces
    rows = [get_space_config(n) for n in list_spaces()]
    if as_json:
        click.echo(json.dumps([{"name": c.name, "family": c.family, "dim": c.dim,
                                "languages": c.languages, "description": c.description} for c in rows]))
        return
    for c in rows:
        click.echo(f"{c.name:<16} {c.dim:>5}-d  {c.family:<14} {c.description}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def reindex(ctx: click.Context, as_json: bool) -> None:
    """Rebuild the space's index from the catalog (choosing the index type anew)."""
    index = archive_from(ctx, writes="reindex").store.rebuild()
    data = {"factory": index.manifest.factory, "params": index.manifest.params, "count": index.count}
    click.echo(json.dumps(data) if as_json else f"rebuilt {data['factory']} index of {data['count']} vectors")


@main.command()
@click.option("--folder", type=click.Path(file_okay=False), help="Where to write the sample footage.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@fail_cleanly
def demo(ctx: click.Context, folder: str | None, as_json: bool) -> None:
    """Build a sample archive from real footage, ingest it, and search it in six languages."""
    from api.demo import run_demo
    run_demo(archive_from(ctx, writes="build the demo archive"), folder, as_json, echo=click.echo)


@main.group()
def bench() -> None:
    """Benchmarks: each prints a table (or --json) and saves results under benchmarks/results."""


def _register_command_modules() -> None:
    import importlib
    import pkgutil

    import api.commands
    for module in pkgutil.iter_modules(api.commands.__path__):
        importlib.import_module(f"api.commands.{module.name}").register(main)


_register_command_modules()

if __name__ == "__main__":
    main()
