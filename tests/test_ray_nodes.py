"""Ray ingestion on a real multi-node cluster: three raylets on this machine, started with
``ray start`` as a user would, and ``vidsonar ingest --runner ray --ray-address`` at its head.

- the head has no CPU: it holds the driver (``ray.init`` picks the head node on its host), so
  every read task and encoder actor runs on another node;
- node ``gpu`` has the only (logical) GPU: ``--gpus-per-encoder 1`` puts the encoder there;
- node ``cpu`` decodes.

Both worker nodes run in their own mount namespace (``unshare -m``) where the driver's home,
its cache (lite's ONNX graphs) and one folder of footage are hidden under empty read-only
mounts: what a worker machine without the driver's home, or without a share, sees. Without
mount namespaces (not root, no ``unshare``) the nodes see everything and the checks that need
a hidden path skip. The cluster uses token authentication (``ray start``'s default in Ray 2.60
once a token exists), with its own token in the environment: nothing is written to ~/.ray
(``tests.ray_cluster`` starts it; ``tests/test_ray_failures.py`` breaks one of its own).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from samples.footage import write_video
from storage.catalog import Catalog
from storage.jobs import JobStore
from tests.conftest import REPO, free_port, moving_frames
from tests.ray_cluster import Cluster, ingest_cli, running_cluster
from tests.test_ingest_resume import lite_archive
from tests.test_ingest_runners import assert_same, snapshot

pytest.importorskip("ray", reason="ray[data] is not installed (pip install 'vidsonar[ray]')")


@pytest.fixture(scope="module")
def places(tmp_path_factory, shared_cache) -> dict[str, Path]:
    """Folders made before the cluster starts, so the worker nodes can be blind to some."""
    return {"homes": tmp_path_factory.mktemp("homes"), "footage": tmp_path_factory.mktemp("footage"),
            "driver_only": tmp_path_factory.mktemp("driver_only"), "cache": shared_cache}


@pytest.fixture(scope="module")
def cluster(places) -> Cluster:
    with running_cluster([places["homes"], places["cache"], places["driver_only"]]) as made:
        made.add("gpu", ["--num-cpus", "1", "--num-gpus", "1"])
        made.add("cpu", ["--num-cpus", "1"])
        yield made


@pytest.fixture(scope="module")
def footage(places, bad_files) -> list[Path]:
    """Clips of three shapes, a truncated file and a text file, on a path every node sees."""
    d = places["footage"]
    return [write_video(d / "a_wide.mp4", moving_frames(60, 96, 64, seed=11), fps=12),
            bad_files["truncated"],
            write_video(d / "b_tall.mp4", moving_frames(50, 64, 96, seed=12), fps=10),
            write_video(d / "c_square.mp4", moving_frames(40, 80, 80, seed=13), fps=10),
            bad_files["text"]]


def test_ingest_on_three_nodes_equals_the_local_run(cluster, places, footage, lite_space):
    local_home, ray_home = places["homes"] / "local", places["homes"] / "ray"
    local = lite_archive(local_home, lite_space).ingestor(runner="local").ingest(footage)
    proc = ingest_cli(cluster, ray_home, footage, "--ray-address", cluster.address, "--encoders", "1",
                      "--gpus-per-encoder", "1", "--json")
    assert proc.returncode == 3, proc.stderr  # the two bad files failed, each alone
    report = json.loads(proc.stdout)
    assert report["failed"] == local.failed and len(local.failed) == 2
    assert (report["ingested"], report["skipped"], report["snippets"]) == \
        (local.ingested, local.skipped, local.snippets) == (3, 0, local.snippets)
    assert_same(snapshot(Catalog(f"sqlite:///{local_home / 'catalog.db'}"), local_home / "thumbs"),
                snapshot(Catalog(f"sqlite:///{ray_home / 'catalog.db'}"), ray_home / "thumbs"), atol=1e-3)

    # where the work ran: nothing on the driver's node (the head), the encoder on the GPU node
    nodes = report["nodes"]
    assert all(n["alive"] for n in nodes)
    driver = [n for n in nodes if n["driver"]]
    assert len(driver) == 1 and driver[0]["videos_read"] == driver[0]["snippets_encoded"] == 0
    encoders = [n for n in nodes if n["snippets_encoded"]]
    assert [n["resources"].get("vidsonar_test_gpu") for n in encoders] == [1.0]
    assert encoders[0]["snippets_encoded"] == local.snippets
    readers = [n for n in nodes if n["videos_read"]]
    assert readers and not any(n["driver"] for n in readers)
    assert sum(n["videos_read"] for n in readers) == 5  # every planned file, the bad ones too

    # what the actor ran, as the local run ran it: the driver's int8 ONNX graph, which the
    # encoder node (blind to the driver's cache when isolated) got from the driver
    assert report["encoder"] == local.encoder and "int8, onnxruntime" in report["encoder"]
    made = Catalog(f"sqlite:///{ray_home / 'catalog.db'}").vector_makers("lite")
    assert [m.encoder for m in made] == [report["encoder"]]


def test_a_file_the_worker_nodes_cannot_see_fails_alone_saying_so(cluster, places, footage):
    if not cluster.isolated:
        pytest.skip("needs mount namespaces (root and unshare) to hide a folder from the worker nodes")
    hidden = write_video(places["driver_only"] / "only_here.mp4", moving_frames(30, 64, 48, seed=14), fps=10)
    # the driver works in a folder the workers do not have, and names a shared clip relative to it
    cwd = places["driver_only"] / "work"
    cwd.mkdir()
    relative = os.path.relpath(footage[0], cwd)
    # and asks for lite's float graph: the workers must get the setting, and that graph
    env = dict(cluster.env, VIDSONAR_LITE_PRECISION="fp32")
    proc = ingest_cli(cluster, places["homes"] / "blind", [relative, hidden], "--ray-address",
                      cluster.address, cwd=cwd, env=env)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("ingested 1 videos"), proc.stdout + proc.stderr  # the relative one
    failures = [line for line in proc.stderr.splitlines() if line.startswith("  failed: ")]
    assert len(failures) == 1 and f"{hidden}: cannot be opened on Ray node" in failures[0]
    assert "same path on every node" in failures[0]
    # what the encoder actor ran, printed: the driver's setting, on ONNX Runtime; and where
    assert "encoder: label-bridge" in proc.stdout and "[fp32, onnxruntime" in proc.stdout, proc.stdout
    assert re.search(r"^  ray: (1 node|2 nodes) read 2 videos and embedded [1-9]\d* snippets$", proc.stdout, re.M)


LONG_PLAN = """
import json, sys
from indexer.runners.ray import RayOptions
from search.archive import Archive
address, home, *files = sys.argv[1:]
report = Archive(home).ingestor(runner="ray", ray_options=RayOptions(address, manifest_rows=0)).ingest(files)
print(json.dumps(report.to_json()))
"""


def test_a_long_plan_reaches_the_workers_without_the_drivers_disk(cluster, places, footage):
    """A plan over ``manifest_rows`` files goes in blocks of many files: in the object store,
    not in a file of the driver's temp folder (here one the worker nodes do not have)."""
    if not cluster.isolated:
        pytest.skip("needs mount namespaces (root and unshare) to hide a folder from the worker nodes")
    tmp = places["driver_only"] / "tmp"
    tmp.mkdir()
    proc = subprocess.run([sys.executable, "-c", LONG_PLAN, cluster.address, str(places["homes"] / "long"),
                           *map(str, footage[:3])], capture_output=True, text=True, cwd=REPO,
                          env=dict(cluster.env, TMPDIR=str(tmp)), timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["ingested"] == 2 and [f["path"] for f in report["failed"]] == [str(footage[1])]


def test_the_cache_files_alone_rebuild_the_space(tmp_path, lite_space, footage):
    """What the Ray runner sends the encoder actors (``ConceptSpace.cache_files``) is all a
    node needs: lite over a folder holding only those files loads the same int8 graph, makes
    nothing of its own, and embeds alike."""
    from encoders.registry import load_space
    from indexer.decode import iter_snippets
    files = lite_space.cache_files()
    assert {f.suffix for f in files} == {".onnx", ".json"} and all(f.parent == lite_space.cache_dir for f in files)
    for f in files:
        shutil.copyfile(f, tmp_path / f.name)
    copy = load_space("lite", cache_dir=tmp_path)
    copy.prepare()
    assert copy.encoder_summary == lite_space.encoder_summary and "int8, onnxruntime" in copy.encoder_summary
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == sorted(f.name for f in files)
    frames = np.stack([s.frames for s in iter_snippets(footage[0], 4, 8, lite_space.frame_size)])
    np.testing.assert_allclose(copy.encode_snippets(frames), lite_space.encode_snippets(frames), atol=1e-6)


def test_a_bad_ray_address_fails_fast_naming_it(cluster, places, footage):
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    home = places["homes"] / "bad"
    proc = ingest_cli(cluster, home, footage[:1], "--ray-address", nobody, timeout=90)
    assert proc.returncode == 1 and nobody in proc.stderr and "ray start --head" in proc.stderr
    assert JobStore(Catalog(f"sqlite:///{home / 'catalog.db'}")).list() == []  # refused before any work
    # the right address without the cluster's token: Ray's refusal, named, with what to set
    env = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    proc = ingest_cli(cluster, home, footage[:1], "--ray-address", cluster.address, env=env, timeout=90)
    assert proc.returncode == 1 and cluster.address in proc.stderr and "RAY_AUTH_TOKEN" in proc.stderr
    assert "refused this driver" in proc.stderr and JobStore(Catalog(f"sqlite:///{home / 'catalog.db'}")).list() == []


def test_the_workers_get_the_drivers_settings_but_not_its_credentials(monkeypatch):
    from indexer.runners.ray import worker_env
    for name in [k for k in os.environ if k.startswith("VIDSONAR_")]:
        monkeypatch.delenv(name)
    settings = {"VIDSONAR_LITE_RUNTIME": "onnx", "VIDSONAR_LITE_PRECISION": "fp32"}
    secrets_ = {"VIDSONAR_DB_URL": "postgresql://u:pw@db/x", "VIDSONAR_MILVUS_TOKEN": "t",
                "VIDSONAR_API_KEYS": "k"}
    for name, value in {**settings, **secrets_, "OTHER": "x"}.items():
        monkeypatch.setenv(name, value)
    assert worker_env() == settings
