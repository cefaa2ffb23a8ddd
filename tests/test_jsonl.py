from __future__ import annotations

import pytest

from indexer.jsonl import read_jsonl, write_jsonl
from vidsonar.errors import InputError


def test_round_trip_skips_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "m" / "a.jsonl", [{"media": "x.mp4", "caption": "un chat"}, {"n": 2}])
    path.write_text(path.read_text() + "\n\n")
    assert list(read_jsonl(path)) == [(1, {"media": "x.mp4", "caption": "un chat"}), (2, {"n": 2})]


@pytest.mark.parametrize("text,words", [("{bad json}\n", "a.jsonl:1: not JSON"),
                                        ('{"ok": 1}\n[1, 2]\n', "a.jsonl:2: expected a JSON object")])
def test_bad_lines_are_named(tmp_path, text, words):
    path = tmp_path / "a.jsonl"
    path.write_text(text)
    with pytest.raises(InputError, match=words):
        list(read_jsonl(path))
    with pytest.raises(InputError, match="does not exist"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
