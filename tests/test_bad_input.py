"""Bad input the generated run may miss, each answered with a 4xx and a message, never a 500:
ids past int64 in bodies and forms, fields the search does not take, malformed Range
headers, junk bodies, oversized queries."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from tests.fakes import hash_space
from tests.test_api import KEY, SPACE, settings_for, write_clip

BIG = 227678137897025568768


@pytest.fixture(scope="module", autouse=True)
def registered_hash_space():
    """The server opens its space by name: the hash space is registered for this module only."""
    with hash_space(SPACE):
        yield


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from search.archive import Archive
    home = tmp_path_factory.mktemp("bad-home")
    media = tmp_path_factory.mktemp("bad-media")
    assert Archive(home, SPACE).ingestor(window=1.0).ingest(
        [write_clip(media / "red.mp4", (200, 30, 30))]).ingested == 1
    with TestClient(create_app(settings_for(home)), raise_server_exceptions=False) as c:
        yield c


def _text(resp) -> str:
    return resp.text[:500]


@pytest.mark.parametrize("body, status, words", [
    ({"query": "red", "filters": {"video_ids": [BIG]}}, 422, "less than or equal to 9223372036854775807"),
    ({"query": "red", "filters": {"video_ids": [-1]}}, 422, "greater than or equal to 0"),
    ({"query": "red", "options": {"k": 5}}, 422, "options"),  # not a search field: named
    ({"query": "red", "beam_size": "many"}, 422, "beam_size"),
    ({"query": "red", "filters": {"tags": ["x" * 201]}}, 422, "at most 200 characters"),
    ({"query": "x" * 2001}, 422, "at most 2000 characters"),
    ({"query": "red", "lang": "x" * 101}, 422, "at most 100 characters"),
    ({"query": "red", "k": 10**30}, 422, "less than or equal to 1000"),
])
def test_search_bodies_out_of_range_or_clashing(client, body, status, words):
    resp = client.post("/api/search", json=body)
    assert resp.status_code == status and words in _text(resp), _text(resp)


@pytest.mark.parametrize("body, field", [
    (b'{"query": "red", "k": 1e400}', "k"),  # Python's JSON parser reads it as inf
    (b'{"query": "red", "filters": {"min_duration": NaN}}', "min_duration"),
    (b'{"query": "red", "filters": {"max_duration": Infinity}}', "max_duration"),  # was let through
    (b'{"query": "red", "filters": {"ingested_after": -1e400}}', "ingested_after"),
])
def test_non_finite_numbers_are_422_naming_the_field(client, body, field):
    """The 422 echoes the input, and JSON has no inf or NaN: the reply used to fail (a 500)."""
    resp = client.post("/api/search", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422, _text(resp)
    error = resp.json()["detail"][0]
    assert error["loc"][-1] == field and error["input"] in ("inf", "-inf", "nan")


@pytest.mark.parametrize("filters, words", [
    ({"min_duration": 10, "max_duration": 5}, "min_duration (10.0) exceeds max_duration (5.0)"),
    ({"ingested_after": "2026-02-01T00:00:00", "ingested_before": "2026-01-01T00:00:00"}, "later than"),
])
def test_a_filter_range_that_nothing_can_fall_in_is_422(client, filters, words):
    resp = client.post("/api/search", json={"query": "red", "filters": filters})
    assert resp.status_code == 422 and words in _text(resp), _text(resp)


def test_path_glob_past_the_database_limit_is_refused_by_name(client):
    """SQLite refuses LIKE patterns past 50,000 bytes ("pattern too complex", a 500 here)."""
    from search.searcher import MAX_PATH_GLOB
    from storage.annotations import Filters
    from vidsonar.errors import InputError
    too_long = {"query": "red", "filters": {"path_glob": "*" * 100_000}}
    resp = client.post("/api/search", json=too_long)
    assert resp.status_code == 422 and "path_glob" in _text(resp), _text(resp)
    longest = {"query": "red", "filters": {"path_glob": "*" * MAX_PATH_GLOB}}
    assert client.post("/api/search", json=longest).json()["hits"]
    with pytest.raises(InputError, match="path_glob"):  # the CLI's --path reaches the searcher
        client.app.state.server.searcher.search("red", filters=Filters(path_glob="*" * 100_000))


def test_oversized_query_parameters(client):
    assert client.get("/api/search", params={"q": "x" * 2001}).status_code == 422
    assert client.get("/api/search", params={"q": "red", "lang": "x" * 101}).status_code == 422
    snippet = client.get("/api/search", params={"q": "red"}).json()["hits"][0]["snippet_id"]
    assert client.get(f"/api/snippets/{snippet}/summary", params={"lang": "x" * 101}).status_code == 422


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'"query"', b""])
def test_junk_bodies_are_4xx(client, content):
    resp = client.post("/api/search", content=content, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, _text(resp)


@pytest.mark.parametrize("snippet_id", [str(BIG), str(2**63), "-3", "abc"])
def test_example_snippet_id_out_of_range(client, snippet_id):
    resp = client.post("/api/search/example", data={"snippet_id": snippet_id})
    assert resp.status_code == 422, _text(resp)


@pytest.mark.parametrize("header, status", [
    ("bytes=abc", 400), ("bytes=5-2", 400), ("bytes=-", 400), ("items=0-5", 400),
    ("bytes=99999999999999999999999-", 416), ("bytes=0-1,,", 206), ("bytes=0-0,2-3", 206),
])
def test_malformed_range_headers(client, header, status):
    video = client.get("/api/videos").json()[0]["id"]
    resp = client.get(f"/api/videos/{video}/stream", headers={"Range": header})
    assert resp.status_code == status, (header, resp.status_code, _text(resp))


def test_ids_past_int64_name_the_bound(client):
    for url in (f"/api/snippets/{BIG}/summary", f"/api/snippets/{BIG}", f"/api/videos/{BIG}",
                f"/api/videos/{BIG}/stream", f"/api/jobs/{BIG}"):
        resp = client.get(url)
        assert resp.status_code == 422 and "9223372036854775807" in _text(resp), (url, _text(resp))
    assert client.delete(f"/api/videos/{BIG}", headers={"X-API-Key": KEY}).status_code == 422
