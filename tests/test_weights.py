"""Weight sources: one parser for hub ids, local directories, files and library names."""

from __future__ import annotations

import pytest

from encoders.weights import WeightSource, find_file, parse_weight_source
from vidsonar.errors import WeightSourceError


def test_forms(tmp_path):
    assert parse_weight_source("hf-hub:timm/PE-Core-B-16") == WeightSource("hf-hub", "timm/PE-Core-B-16")
    assert parse_weight_source("hf-hub:org/name@v1.0").value == "org/name@v1.0"
    assert parse_weight_source(f"local-dir:{tmp_path}").path == tmp_path
    assert parse_weight_source("file:///x/y.pt") == WeightSource("file", "/x/y.pt")
    assert parse_weight_source("text_sonar_basic_encoder") == WeightSource("name", "text_sonar_basic_encoder")
    assert parse_weight_source(str(tmp_path)).kind == "local-dir"
    assert parse_weight_source("/nonexistent/w.pt").kind == "file"
    assert str(parse_weight_source("hf-hub:a/b")) == "hf-hub:a/b"


@pytest.mark.parametrize("bad", ["", "hf-hub:", "hf-hub:noslash", "s3x:bucket/key", "two words",
                                 "hf-hub:a/b/c"])
def test_bad_sources_are_quoted(bad):
    with pytest.raises(WeightSourceError) as info:
        parse_weight_source(bad)
    assert repr(bad.strip()) in str(info.value) or bad == ""


def test_must_exist(tmp_path):
    with pytest.raises(WeightSourceError, match="does not exist"):
        parse_weight_source(f"file:{tmp_path / 'missing.pt'}", must_exist=True)
    (tmp_path / "f.pt").write_bytes(b"")
    with pytest.raises(WeightSourceError, match="not a directory"):
        parse_weight_source(f"local-dir:{tmp_path / 'f.pt'}", must_exist=True)


def test_find_file(tmp_path):
    (tmp_path / "a_encoder.pt").write_bytes(b"")
    assert find_file(tmp_path, ("*encoder*.pt",), "encoder", "x").name == "a_encoder.pt"
    with pytest.raises(WeightSourceError, match="no decoder file"):
        find_file(tmp_path, ("*decoder*.pt",), "decoder", "x")
    (tmp_path / "b_encoder.pt").write_bytes(b"")
    with pytest.raises(WeightSourceError, match="several"):
        find_file(tmp_path, ("*encoder*.pt",), "encoder", "x")
