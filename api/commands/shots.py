"""``vidsonar bench shots``: shot detection quality and cost, shot-aware vs fixed windows."""

from __future__ import annotations

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    bench = main.get_command(None, "bench")

    @bench.command("shots")
    @click.option("--variants", default="none,scenedetect,transnetv2", show_default=True,
                  help="Comma-separated --shots settings to ingest the reels with.")
    @click.option("--no-real", is_flag=True, help="Skip the real concert clip (60 s of TransNetV2).")
    @click.option("--work", type=click.Path(file_okay=False), help="Folder for the reels and homes (kept).")
    @click.option("--out", type=click.Path(file_okay=False), help="Results folder (default benchmarks/results).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object (progress on stderr).")
    @fail_cleanly
    def shots(variants: str, no_real: bool, work: str | None, out: str | None, as_json: bool) -> None:
        """Cut P/R/F1 (2-frame tolerance) and x real time of TransNetV2 and PySceneDetect; R@1,
        MRR, R1@IoU0.5, mIoU and ingest speed with shot-aware vs fixed windows."""
        import json
        import tempfile
        from pathlib import Path

        from benchmarks import shots as bench_shots
        log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
        with tempfile.TemporaryDirectory() as tmp:
            result = bench_shots.run(Path(work) if work else Path(tmp), tuple(variants.split(",")),
                                     real=not no_real, log=log)
        js, csv_path = bench_shots.save(result, Path(out) if out else bench_shots.RESULTS)
        if as_json:
            click.echo(json.dumps(result))
        else:
            click.echo(f"wrote {js} and {csv_path}")
