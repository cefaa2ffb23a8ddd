"""``vidsonar bench retrieval`` and ``vidsonar bench ingest``: Table 2 metrics and throughput."""

from __future__ import annotations

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    bench = main.get_command(None, "bench")

    @bench.command("retrieval")
    @click.option("--dataset", "datasets", multiple=True,
                  help="KIND=PATH (manifest, msrvtt, multi-msrvtt, vatex, pe-video, dream1k) or a .jsonl "
                       "manifest; repeatable. Default: the shipped set (offline).")
    @click.option("--systems", default="lite,dual-test", show_default=True,
                  help="Comma-separated spaces or open_clip:MODEL[@WEIGHTS].")
    @click.option("--device", help="Torch device for the models (e.g. cuda).")
    @click.option("--text-side", type=click.Choice(["source", "query"]), default="source", show_default=True,
                  help="Encode captions as passages or as queries.")
    @click.option("--work", type=click.Path(file_okay=False), help="Folder where the shipped clips are made (reused).")
    @click.option("--out", type=click.Path(file_okay=False),
                  help="Folder for the CSV, PNGs and retrieval.duckdb (default: benchmarks/results).")
    @click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
    @click.pass_context
    @fail_cleanly
    def retrieval(ctx: click.Context, datasets: tuple[str, ...], systems: str, device: str | None,
                  text_side: str, work: str | None, out: str | None, as_json: bool) -> None:
        """Text->video R@1/5/10, MRR, AC, covariance trace and logdet; DuckDB, CSV and plots."""
        from benchmarks.retrieval.run import main as run
        argv = [a for d in datasets for a in ("--dataset", d)] + ["--systems", systems, "--text-side", text_side]
        home = (ctx.find_root().obj or {}).get("home")
        argv += (["--home", home] if home else []) + (["--device", device] if device else [])
        argv += (["--work", work] if work else []) + (["--out", out] if out else [])
        argv += ["--json"] if as_json else []
        run(argv)

    @bench.command("ingest")
    @click.option("--videos", type=int, help="Use only the first N videos of the set.")
    @click.option("--footage", multiple=True, type=click.Path(exists=True),
                  help="Time these files or folders (repeatable) instead of the shipped set.")
    @click.option("--pe-core", default="PE-Core-T-16-384", show_default=True,
                  help="open_clip MODEL[@WEIGHTS] for the backbone mode; 'none' to skip.")
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--runner", default="sequential,local", show_default=True,
                  help="Runners to time decode+lite with, side by side: sequential, local, ray.")
    @click.option("--lite-runtime", default="auto", show_default=True,
                  help="lite's vision encoder(s), comma-separated (auto, torch, fp32, int8): one row each.")
    @click.option("--repeats", default=1, show_default=True, type=click.IntRange(min=1),
                  help="Rounds over every mode, interleaved; medians reported (3+ on a noisy machine).")
    @click.option("--out", type=click.Path(file_okay=False),
                  help="Folder for ingest.csv, ingest.json and retrieval.duckdb (default: benchmarks/results).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @fail_cleanly
    def ingest(videos: int | None, footage: tuple[str, ...], pe_core: str, device: str, runner: str,
               lite_runtime: str, repeats: int, out: str | None, as_json: bool) -> None:
        """Snippets/s and x real time: decode only, decode + lite per runner, decode + a PE-Core backbone."""
        from benchmarks.retrieval.ingest import main as run
        run((["--videos", str(videos)] if videos else [])
            + [a for f in footage for a in ("--footage", f)]
            + ["--pe-core", pe_core, "--device", device, "--runner", runner]
            + ["--lite-runtime", lite_runtime, "--repeats", str(repeats)]
            + (["--out", out] if out else []) + (["--json"] if as_json else []))
