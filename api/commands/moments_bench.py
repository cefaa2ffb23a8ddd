"""``vidsonar bench moments``: moment retrieval (R1@IoU, mean IoU, R5) per language and system."""

from __future__ import annotations

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    bench = main.get_command(None, "bench")

    @bench.command("moments")
    @click.option("--split", type=click.Choice(["tune", "test", "both"]), default="both", show_default=True,
                  help="Split(s) of the shipped reels.")
    @click.option("--dataset", help="charades-sta=PATH or qvhighlights=PATH instead of the shipped reels.")
    @click.option("--hop", "hops", type=float, multiple=True,
                  help="Hop(s) of the overlapping-window variants (default: 2).")
    @click.option("--tune", is_flag=True, help="Also print the margin x max-length grid on the tune split.")
    @click.option("--long", "long_", is_flag=True, help="Also run reels of long scenes (10-15 s shots).")
    @click.option("--work", type=click.Path(file_okay=False), help="Folder for the reels and archives (reused).")
    @click.option("--out", type=click.Path(file_okay=False),
                  help="Folder for moments.csv, plots and retrieval.duckdb (default: benchmarks/results).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @fail_cleanly
    def moments(split: str, dataset: str | None, hops: tuple[float, ...], tune: bool, long_: bool,
                work: str | None, out: str | None, as_json: bool) -> None:
        """Do time codes point at the scene? Snippets, the former merge, grounding, overlapping windows."""
        from benchmarks.moments import main as run
        argv = ["--split", split] + (["--dataset", dataset] if dataset else [])
        argv += [a for h in hops for a in ("--hop", str(h))] + (["--tune"] if tune else [])
        argv += ["--long"] if long_ else []
        argv += (["--work", work] if work else []) + (["--out", out] if out else [])
        run(argv + (["--json"] if as_json else []))
