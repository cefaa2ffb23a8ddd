"""`vidsonar align` end to end on the tiny example: train, register, ingest, search, decode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from align.config import AlignConfig, load_config
from align.data import read_manifest, split
from align.trainer import lr_factor, retrieval_r1
from vidsonar.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def cli(home: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "vidsonar"), "--home", str(home), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def cli_here(home: Path, *args: str):
    """The same CLI group run in this process: a SONAR space costs ~10 s to import and load in
    each new process, so searches after the first share one import (the ingest and the
    error exit still run as real subprocesses)."""
    from api.cli import main
    return CliRunner().invoke(main, ["--home", str(home), *args])


def test_schedule_warms_up_then_decays():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5, abs=0.02)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0, abs=1e-9)


def test_r1_and_chance():
    items = np.eye(3, dtype=np.float32)
    r1, chance = retrieval_r1(items, ["a", "b", "c"], items[[2, 1]], ["c", "b"])
    assert r1 == 1.0 and chance == pytest.approx(1 / 3)


def test_config_validation(tmp_path):
    with pytest.raises(InputError, match="no stages"):
        AlignConfig.from_dict({"name": "x", "space": {}})
    with pytest.raises(InputError, match="unknown stage keys: epoch"):
        AlignConfig.from_dict({"name": "x", "space": {}, "stages": [{"name": "s", "manifest": "m", "epoch": 1}]})
    cfg = load_config(ROOT / "examples" / "align-tiny.yaml")
    assert cfg.name == "tiny-vsonar" and [s.name for s in cfg.stages] == ["images", "videos"]


def test_manifest_and_group_split(tmp_path):
    rows = [{"media": f"m{i // 2}.jpg", "caption": f"c{i}", "lang": "eng_Latn", "group": f"g{i // 2}"}
            for i in range(20)]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pairs = read_manifest(tmp_path / "m.jsonl")
    assert pairs[0].media == (tmp_path / "m0.jpg").resolve()
    train, val = split(pairs, 0.2, 42, 100)
    assert len(val) == 4 and not {p.group for p in train} & {p.group for p in val}
    (tmp_path / "bad.jsonl").write_text('{"caption": "no media"}\n')
    with pytest.raises(InputError, match="bad.jsonl:1"):
        read_manifest(tmp_path / "bad.jsonl")


@pytest.mark.slow
def test_align_ingest_search_decode(tmp_path, clean_registry):
    cfg = yaml.safe_load((ROOT / "examples" / "align-tiny.yaml").read_text())
    cfg["stages"][0]["epochs"] = 20
    cfg["stages"][1]["epochs"] = 2
    cfg["freeze_backbone_steps"] = 150  # joint training during the video stage
    # a stage that can only make things worse: its starting weights must be its best checkpoint
    cfg["stages"].append(dict(cfg["stages"][0], name="diverge", epochs=2, lr=3.0, warmup_steps=0, patience=5))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    home = tmp_path / "home"
    run = cli(home, "align", str(tmp_path / "tiny.yaml"), "--no-progress")
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    images = result["stages"]["images"]
    for key in ("val_mse_init", "val_mse_best", "val_cos_best", "val_r1"):
        assert key in images and key in result["stages"]["videos"]
    assert images["val_mse_best"] < 0.5 * images["val_mse_init"]
    assert images["val_r1"] > images["val_r1_chance"]
    assert result["stages"]["videos"]["joint"] is True
    for name, stage in result["stages"].items():  # no stage ends worse than it started
        assert stage["val_mse_best"] <= stage["val_mse_init"], name
    diverge = result["stages"]["diverge"]
    assert diverge["best_epoch"] == 0 and diverge["val_mse_best"] == diverge["val_mse_init"]
    assert diverge["epochs"] == 2
    assert (home / "spaces" / "tiny-vsonar.json").exists()

    # the registered space ingests video, answers SONAR-encoded queries, and decodes hits
    from samples.footage import make_clip
    clip = make_clip(tmp_path / "clips" / "cat-rocket.mp4", ["chelsea", "rocket"], seconds=2.0, fps=6,
                     size=(96, 64))
    ingest = cli(home, "--space", "tiny-vsonar", "ingest", str(clip.path), "--window", "1", "--json")
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert json.loads(ingest.stdout.strip().splitlines()[-1])["snippets"] >= 2
    bad = cli(home, "--space", "tiny-vsonar", "search", "un chat", "--lang", "fra_Latm")
    assert bad.returncode == 1 and "fra_Latn" in bad.stderr
    search = cli_here(home, "--space", "tiny-vsonar", "search", "un chat", "--lang", "fra_Latn", "-k", "2",
                      "--snippets", "--json")
    assert search.exit_code == 0, (search.stderr[-3000:], search.exception)
    hits = json.loads(search.stdout.strip().splitlines()[-1])["hits"]
    assert len(hits) == 2
    # the query layer on a space with a decoder: decoded summaries (not labels), round-trip rerank
    full = cli_here(home, "--space", "tiny-vsonar", "search", "un chat", "--lang", "fra_Latn", "-k", "2",
                    "--snippets", "--summaries", "--summary-lang", "deu_Latn", "--rerank", "roundtrip", "--json")
    assert full.exit_code == 0, (full.stderr[-3000:], full.exception)
    out = json.loads(full.stdout.strip().splitlines()[-1])
    assert out["rerank"] == "roundtrip" and len(out["hits"]) == 2
    assert {h["summary"]["kind"] for h in out["hits"]} == {"decoded"}
    assert {h["summary"]["lang"] for h in out["hits"]} == {"deu_Latn"}
    detected = cli_here(home, "--space", "tiny-vsonar", "search",
                        "Une femme traverse la rue sous la pluie avec un parapluie rouge", "--json")
    assert detected.exit_code == 0, (detected.stderr[-3000:], detected.exception)
    assert json.loads(detected.stdout.strip().splitlines()[-1])["lang_source"] == "detected"

    from encoders.registry import load_space, scan_dir
    from indexer.decode import iter_snippets
    scan_dir(home / "spaces")
    space = load_space("tiny-vsonar")
    snippet = next(iter_snippets(clip.path, 1.0, 4, space.frame_size))
    vector = space.encode_snippets(np.asarray(snippet.frames)[None])
    text = space.decode(vector, "deu_Latn", beam_size=2, max_len=8)
    assert space.has_decoder and len(text) == 1 and isinstance(text[0], str)
