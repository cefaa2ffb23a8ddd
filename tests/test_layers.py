"""The layer rules of DEVELOPING.md as a check: import-linter's contracts in pyproject.toml.

One test runs the contracts on this tree; the other copies the packages, adds one import that
points up the layers and one cycle, and checks the same contracts catch both (so the first
test can fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["vidsonar", "storage", "encoders", "indexer", "align", "samples", "search", "api", "benchmarks"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install import-linter==2.16)")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_the_layer_contracts():
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_an_upward_import_and_a_cycle_break_the_contracts(tmp_path):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.onnx",
                                                                                 "*.bin", "*.pt", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "storage" / "upward.py").write_text("from search.archive import Archive\n")
    (tmp_path / "vidsonar" / "cycle_a.py").write_text("from vidsonar import cycle_b\n")
    (tmp_path / "vidsonar" / "cycle_b.py").write_text("from vidsonar import cycle_a\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0
    assert "storage.upward -> search.archive" in out.stdout
    assert "No cycles are allowed in vidsonar" in out.stdout
