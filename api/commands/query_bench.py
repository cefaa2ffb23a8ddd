"""``vidsonar bench query``: reranker effect and cross-lingual overlap on the sample footage."""

from __future__ import annotations

import click

from api.clikit import fail_cleanly


def register(main: click.Group) -> None:
    bench = main.get_command(None, "bench")

    @bench.command("query")
    @click.option("--home", "bench_home", type=click.Path(file_okay=False),
                  help="Archive to build or reuse (default: a fresh temporary one).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @fail_cleanly
    def query(bench_home: str | None, as_json: bool) -> None:
        """R@1/MRR with and without alignment-consistency reranking; overlap@10 across languages."""
        from benchmarks.query_layer import main as run
        run((["--home", bench_home] if bench_home else []) + (["--json"] if as_json else []))
