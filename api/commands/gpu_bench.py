"""``vidsonar bench gpu``: the one GPU check (faiss GPU IVF-PQ, PE-Core encoders, ingest, exact top-k)."""

from __future__ import annotations

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    bench = main.get_command(None, "bench")

    @bench.command("gpu")
    @click.option("--quick", is_flag=True, help="Small sizes (implied without a GPU).")
    @click.option("--budget-s", type=float, default=300.0, show_default=True, help="Time for the whole run.")
    @click.option("--device", default="auto", show_default=True, help="auto, cuda, cuda:N or cpu.")
    @click.option("--parts", default="exact_topk,faiss_ivfpq,encoders,ingest", show_default=True)
    @click.option("--out", type=click.Path(dir_okay=False),
                  help="The JSON file (default: benchmarks/results/gpu_check.json).")
    @click.option("--json", "as_json", is_flag=True, help="Print the JSON.")
    @fail_cleanly
    def gpu(quick: bool, budget_s: float, device: str, parts: str, out: str | None, as_json: bool) -> None:
        """What the GPU path gives, measured where it can be; what it skipped and why. One JSON."""
        from benchmarks.gpu_check import main as run
        run((["--quick"] if quick else []) + ["--budget-s", str(budget_s), "--device", device, "--parts", parts]
            + (["--out", out] if out else []) + (["--json"] if as_json else []))
