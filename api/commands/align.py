"""``vidsonar align CONFIG``: train a v-Sonar projector and register the space it makes."""

from __future__ import annotations

import json

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    @main.command()
    @click.argument("config", type=click.Path(exists=True, dir_okay=False))
    @click.option("--name", help="Name of the space to register (overrides the config's).")
    @click.option("--device", help="cpu, cuda, cuda:1 ... (default: the config's, else auto).")
    @click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
    @click.pass_context
    @fail_cleanly
    def align(ctx: click.Context, config: str, name: str | None, device: str | None,
              progress: bool | None) -> None:
        """Align a vision backbone to a text space (SONAR or e5) with the recipe in CONFIG.

        CONFIG is YAML, JSON or TOML (see examples/align-tiny.yaml). Prints a summary per stage;
        the last line is one JSON object with, per stage, val_mse_init, val_mse_best,
        val_cos_best and val_r1. The trained space is written to $VIDSONAR_HOME/spaces and is
        then usable with --space NAME by ingest and search.
        """
        from dataclasses import replace

        from align import align as run_align
        from align import load_config
        cfg = load_config(config)
        if name:
            cfg = replace(cfg, name=name)
        if device:
            cfg = replace(cfg, device=device)
        result = run_align(cfg, ctx.obj["home"], progress=progress)
        for stage, r in result.stages.items():
            click.echo(f"{stage}: val MSE {r['val_mse_init']:.4g} -> {r['val_mse_best']:.4g}, "
                       f"cos {r['val_cos_best']:.3f}, R@1 {r['val_r1']:.3f} (chance {r['val_r1_chance']:.3f}), "
                       f"{r['epochs']} epochs, {r['pairs_per_s']:.0f} pairs/s")
        click.echo(f"registered space {result.space!r} ({result.space_config}); "
                   f"try: vidsonar --space {result.space} ingest VIDEOS")
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
