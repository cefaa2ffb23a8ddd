"""``vidsonar delete VIDEO_ID`` and ``vidsonar bench ann``: the index's lifecycle and its benchmark."""

from __future__ import annotations

import json
import sys

import click

from api.clikit import ID, archive_from, fail_cleanly


def register(main: click.Group) -> None:
    @main.command()
    @click.argument("video_id", type=ID)
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @click.pass_context
    @fail_cleanly
    def delete(ctx: click.Context, video_id: int, as_json: bool) -> None:
        """Delete a video: its vectors from the index, then its catalog rows and thumbnails."""
        from vidsonar.errors import NotFoundError
        archive = archive_from(ctx, writes=f"delete video {video_id}")
        if archive.catalog.video(video_id) is None:
            raise NotFoundError(f"no video with id {video_id}; `vidsonar search` shows each hit's video id")
        removed, deleted = archive.delete_video(video_id)
        data = {"video_id": video_id, "vectors_removed": removed, "deleted": deleted}
        click.echo(json.dumps(data) if as_json else
                   f"deleted video {video_id} ({removed} vectors removed from the index)")

    bench = main.get_command(None, "bench")
    register_recovery(bench)

    @bench.command("ann")
    @click.option("--n", "n", default=1_000_000, show_default=True, help="Base vectors.")
    @click.option("--dataset", type=click.Choice(["synthetic", "text"]), default="synthetic",
                  show_default=True, help="synthetic: 1024-d clustered; text: e5 embeddings of sentences.")
    @click.option("--queries", default=1000, show_default=True, help="Queries (disjoint from the base).")
    @click.option("--systems", default=",".join(_systems()), show_default=True,
                  help="Comma-separated systems to compare (exact Flat always runs: it is the truth).")
    @click.option("--hnsw-max", default=1_000_000, show_default=True,
                  help="Skip the HNSW baselines above this many vectors (they hold every vector in RAM).")
    @click.option("--dim", default=1024, show_default=True, help="Dimension of the synthetic vectors.")
    @click.option("--milvus-index", default="FLAT,IVF_SQ8,HNSW", show_default=True,
                  help="Index types of the milvus-lite rows (what Milvus Lite offers).")
    @click.option("--workdir", type=click.Path(file_okay=False), help="Scratch space for indexes.")
    @click.option("--out", type=click.Path(file_okay=False), help="Results folder (default benchmarks/results).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object (progress on stderr).")
    @fail_cleanly
    def ann(n: int, dataset: str, queries: int, systems: str, hnsw_max: int, dim: int,
            milvus_index: str, workdir: str | None, out: str | None, as_json: bool) -> None:
        """Recall, QPS, latency and bytes per vector: vidsonar's index vs exact search,
        faiss HNSW, hnswlib and LanceDB, on the same vectors. Writes CSV + PNG."""
        from pathlib import Path

        from benchmarks import ann as bench_ann
        log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
        rows, meta = bench_ann.run(dataset, n, queries, systems=tuple(systems.split(",")),
                                   hnsw_max=hnsw_max, workdir=workdir, log=log, dim=dim,
                                   milvus_kinds=tuple(milvus_index.split(",")))
        csv_path, png = bench_ann.save(rows, meta, Path(out) if out else bench_ann.RESULTS)
        if as_json:
            click.echo(json.dumps(bench_ann.to_json(rows, meta)))
        else:
            click.echo(f"wrote {csv_path} and {png}")
        sys.stdout.flush()


def _systems() -> tuple[str, ...]:
    return ("faiss-flat", "vidsonar", "faiss-refine", "faiss-hnsw32", "hnswlib", "lancedb")


def register_recovery(bench: click.Group) -> None:
    @bench.command("recovery")
    @click.option("--n", "n", default=100_000, show_default=True, help="Vectors in the index.")
    @click.option("--crash", default=0.01, show_default=True,
                  help="Fraction committed but not indexed when the simulated crash hits.")
    @click.option("--factory", help="Index type to build, e.g. IVF256,PQ24np (default: what "
                  "choose_index picks for N; Flat up to 100k).")
    @click.option("--workdir", type=click.Path(file_okay=False), help="Scratch space.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @fail_cleanly
    def recovery(n: int, crash: float, factory: str | None, workdir: str | None,
                 as_json: bool) -> None:
        """Open after a crash: replaying the change log vs a full rebuild, in one run."""
        from benchmarks import recovery as bench_recovery
        log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
        result = bench_recovery.run_recovery(n, crash, workdir=workdir, log=log, factory=factory)
        path = bench_recovery.save(result)
        click.echo(json.dumps(result) if as_json else f"wrote {path}")

    @bench.command("follow")
    @click.option("--videos", default=20, show_default=True, help="Videos the CLI ingests.")
    @click.option("--poll", default=1.0, show_default=True, help="Seconds between follow() polls.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @fail_cleanly
    def follow(videos: int, poll: float, as_json: bool) -> None:
        """Seconds from a CLI ingest's commit to another process's index returning it."""
        from benchmarks import recovery as bench_recovery
        log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
        result = bench_recovery.run_follow(videos, poll, log=log)
        path = bench_recovery.save(result)
        click.echo(json.dumps(result) if as_json else f"wrote {path}")
