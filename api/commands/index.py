"""``vidsonar delete VIDEO_ID`` and ``vidsonar bench ann``: the index's lifecycle and its benchmark."""

from __future__ import annotations

import json
import sys

import click

from api.cli import archive_from, fail_cleanly


def register(main: click.Group) -> None:
    @main.command()
    @click.argument("video_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @click.pass_context
    @fail_cleanly
    def delete(ctx: click.Context, video_id: int, as_json: bool) -> None:
        """Delete a video: its vectors from the index, then its catalog rows and thumbnails."""
        from vidsonar.errors import NotFoundError
        archive = archive_from(ctx)
        if archive.catalog.video(video_id) is None:
            raise NotFoundError(f"no video with id {video_id}; `vidsonar info` lists the archive")
        removed, deleted = archive.delete_video(video_id)
        data = {"video_id": video_id, "vectors_removed": removed, "deleted": deleted}
        click.echo(json.dumps(data) if as_json else
                   f"deleted video {video_id} ({removed} vectors removed from the index)")

    bench = main.get_command(None, "bench")

    @bench.command("ann")
    @click.option("--n", "n", default=1_000_000, show_default=True, help="Base vectors.")
    @click.option("--dataset", type=click.Choice(["synthetic", "text"]), default="synthetic",
                  show_default=True, help="synthetic: 1024-d clustered; text: e5 embeddings of sentences.")
    @click.option("--queries", default=1000, show_default=True, help="Queries (disjoint from the base).")
    @click.option("--systems", default=",".join(_systems()), show_default=True,
                  help="Comma-separated systems to compare (exact Flat always runs: it is the truth).")
    @click.option("--hnsw-max", default=1_000_000, show_default=True,
                  help="Skip the HNSW baselines above this many vectors (they hold every vector in RAM).")
    @click.option("--workdir", type=click.Path(file_okay=False), help="Scratch space for indexes.")
    @click.option("--out", type=click.Path(file_okay=False), help="Results folder (default benchmarks/results).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object (progress on stderr).")
    @fail_cleanly
    def ann(n: int, dataset: str, queries: int, systems: str, hnsw_max: int, workdir: str | None,
            out: str | None, as_json: bool) -> None:
        """Recall, QPS, latency and bytes per vector: vidsonar's index vs exact search,
        faiss HNSW, hnswlib and LanceDB, on the same vectors. Writes CSV + PNG."""
        from pathlib import Path

        from benchmarks import ann as bench_ann
        log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
        rows, meta = bench_ann.run(dataset, n, queries, systems=tuple(systems.split(",")),
                                   hnsw_max=hnsw_max, workdir=workdir, log=log)
        csv_path, png = bench_ann.save(rows, meta, Path(out) if out else bench_ann.RESULTS)
        if as_json:
            click.echo(json.dumps(bench_ann.to_json(rows, meta)))
        else:
            click.echo(f"wrote {csv_path} and {png}")
        sys.stdout.flush()


def _systems() -> tuple[str, ...]:
    return ("faiss-flat", "vidsonar", "faiss-refine", "faiss-hnsw32", "hnswlib", "lancedb")
