"""``vidsonar delete`` and ``vidsonar bench ann --json`` through the real CLI group."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from api.cli import main
from benchmarks.synthetic import clustered
from encoders.registry import get_space_config
from storage.catalog import Catalog, SnippetRecord
from storage.ids import pack_snippet_id
from vidsonar.home import Home


def test_delete_removes_vectors_rows_and_thumbnails(tmp_path):
    home = Home.resolve(tmp_path / "home")
    dim = get_space_config("lite").dim
    catalog = Catalog(home.db_url)
    vectors = clustered(60, dim, seed=2)
    video_ids = []
    for v in range(3):
        vid = catalog.reserve_video(f"/v{v}.mp4", f"hash{v}", 1, None)
        records = [SnippetRecord(pack_snippet_id(vid, i), i, i * 4.0, i * 4.0 + 4, [i * 4.0]) for i in range(20)]
        catalog.complete_video(vid, space="lite", info={"duration": 80.0}, snippets=records,
                               vectors=vectors[v * 20:(v + 1) * 20])
        video_ids.append(vid)
    (home.thumbs / str(video_ids[0])).mkdir(parents=True)
    runner = CliRunner()
    out = runner.invoke(main, ["--home", str(home.root), "--space", "lite", "delete",
                               str(video_ids[0]), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"video_id": video_ids[0], "vectors_removed": 20, "deleted": True}
    assert catalog.video(video_ids[0]) is None
    assert catalog.embedding_count("lite") == 40
    assert not (home.thumbs / str(video_ids[0])).exists()
    missing = runner.invoke(main, ["--home", str(home.root), "--space", "lite", "delete", "999"])
    assert missing.exit_code == 1 and "no video with id 999" in missing.output


@pytest.mark.slow
def test_bench_ann_json_reduced_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSONAR_CACHE", str(tmp_path / "cache"))
    out = CliRunner().invoke(main, ["bench", "ann", "--n", "3000", "--queries", "50",
                                    "--systems", "faiss-flat,vidsonar,hnswlib", "--out",
                                    str(tmp_path / "results"), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["n"] == 3000 and data["dim"] == 1024
    for system in ("faiss-flat", "vidsonar", "hnswlib"):
        for setting in data["results"][system].values():
            assert set(setting) >= {"recall_at_10", "p50_ms", "qps", "bytes_per_vector"}
    assert data["results"]["faiss-flat"]["Flat"]["recall_at_10"] == 1.0
    reranked = [s for name, s in data["results"]["vidsonar"].items() if "rerank" in name]
    assert max(s["recall_at_10"] for s in reranked) >= 0.9
    assert (tmp_path / "results" / "ann_synthetic_3000.csv").exists()
    assert (tmp_path / "results" / "ann_synthetic_3000.png").exists()


def test_pareto_front():
    from benchmarks.ann import pareto
    points = [(0.5, 1000.0), (0.9, 500.0), (0.8, 400.0), (0.99, 100.0), (0.95, 50.0)]
    assert pareto(points) == [(0.5, 1000.0), (0.9, 500.0), (0.99, 100.0)]


def test_synthetic_generator_is_seeded_unit_norm_and_clustered():
    from benchmarks.synthetic import Generator
    gen = Generator(dim=128, latent=16, n_clusters=20)
    a, b = gen.sample(500), gen.sample(500)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(a[:10], gen.sample(10, stream=1))
    # structure: nearest neighbours are far closer than random pairs
    sims = a @ a.T
    np.fill_diagonal(sims, -1)
    assert sims.max(axis=1).mean() > 2 * abs(sims.mean()) + 0.3
