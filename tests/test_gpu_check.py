"""benchmarks/gpu_check.py runs on a machine without a GPU and says what it skipped and why.

Where a GPU is visible (the ``gpu`` test), the same run must measure the GPU parts instead.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

torch = pytest.importorskip("torch", reason="torch is not installed")


@pytest.fixture(scope="module")
def cpu_report(tmp_path_factory):
    from benchmarks.gpu_check import main
    out = tmp_path_factory.mktemp("gpu-check") / "gpu_check.json"
    report = main(["--device", "cpu", "--quick", "--budget-s", "120", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))  # ONE JSON, as written
    return report


def test_cpu_run_lists_the_gpu_parts_it_skipped_with_reasons(cpu_report):
    skipped = {s["part"]: s["reason"] for s in cpu_report["skipped"]}
    assert "no CUDA device" in skipped["gpu"]
    assert skipped.get("faiss_ivfpq.gpu") or skipped.get("faiss_ivfpq")  # GPU IVF-PQ: skipped, with why
    pe = {s["model"]: s["reason"] for s in cpu_report["parts"]["encoders"]["models_skipped"]}
    assert set(pe) == {"PE-Core-L-14-336", "PE-Core-bigG-14-448"} and all(pe.values())
    assert cpu_report["environment"]["device"] == "cpu" and cpu_report["quick"]


def test_cpu_run_has_cpu_figures(cpu_report):
    parts = cpu_report["parts"]
    topk = parts["exact_topk"]
    assert topk["status"] == "ok" and topk["rows"]
    assert all(r["qps"] > 0 and r["top1_is_the_planted_row"] == 1.0 for r in topk["rows"])
    assert parts["encoders"]["status"] == "ok" and parts["encoders"]["rows"][0]["frames_per_s"] > 0
    faiss = parts["faiss_ivfpq"]
    if faiss["status"] == "skipped":  # faiss is pinned in the lock; where it is missing, say so
        assert "faiss is not installed" in faiss["reason"]
    else:
        assert faiss["where"] == "cpu" and len(faiss["rows"]) == 4
        best = max(r["recall_at_10_reranked"] for r in faiss["rows"])
        # the float16 rerank lifts PQ's recall: the rerank really rescored candidates
        assert best > max(r["recall_at_10_pq"] for r in faiss["rows"]) and best >= 0.8
    ingest = parts["ingest"]
    if ingest["status"] == "ok":
        assert ingest["decode_and_encode"]["x_realtime"] > 0
        assert ingest["decode_and_encode"]["frames_encoded"] == 8 * ingest["decode_and_encode"]["snippets"]
        assert ingest["gpu_utilisation"]["available"] is False and ingest["gpu_utilisation"]["reason"]
    else:
        assert "av" in ingest["reason"]


def test_a_part_past_the_budget_is_skipped_saying_so(tmp_path):
    from benchmarks.gpu_check import main
    report = main(["--device", "cpu", "--budget-s", "0", "--parts", "faiss_ivfpq,encoders",
                   "--out", str(tmp_path / "g.json")])
    for part in ("faiss_ivfpq", "encoders"):
        assert report["parts"][part]["status"] == "skipped"
        assert "time budget" in report["parts"][part]["reason"]


@pytest.mark.slow
def test_cli_bench_gpu_writes_the_json(tmp_path):
    out = tmp_path / "gpu.json"
    run_cli("bench", "gpu", "--device", "cpu", "--parts", "exact_topk", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["parts"]["exact_topk"]["status"] == "ok"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_run_measures_the_gpu_parts(tmp_path):
    from benchmarks.gpu_check import main
    report = main(["--quick", "--parts", "exact_topk,encoders", "--out", str(tmp_path / "g.json")])
    assert report["environment"]["device"].startswith("cuda")
    assert report["parts"]["exact_topk"]["rows"][0]["dtype"] == "float16"
    assert {r["model"] for r in report["parts"]["encoders"]["rows"]} == {"PE-Core-L-14-336", "PE-Core-bigG-14-448"}
