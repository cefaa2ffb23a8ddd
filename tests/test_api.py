"""The HTTP API through FastAPI's test client: search, media, auth, and every bad input.

A deterministic hash space stands in for real models (no weights, milliseconds per call):
these tests are about HTTP, not about meaning. The real lite space is driven through the
real server in ``test_e2e_browser.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.server import ServerSettings, create_app
from api.server.errors import status_of
from encoders.base import SpaceConfig
from tests.fakes import HASH_SPACE, HashSpace, hash_space
from vidsonar import errors

KEY = "test-key-1"
SPACE = HASH_SPACE


@pytest.fixture(scope="module", autouse=True)
def registered_hash_space():
    """The server opens its space by name: the hash space is registered for this module only."""
    with hash_space(SPACE):
        yield


def write_clip(path: Path, colour: tuple[int, int, int], seconds: float = 3.0, fps: int = 8) -> Path:
    from samples.footage import write_video
    rng = np.random.default_rng(sum(colour))
    frames = []
    for i in range(int(seconds * fps)):
        f = np.full((48, 64, 3), colour, np.uint8)
        f[8:24, (i * 2) % 48:(i * 2) % 48 + 16] = rng.integers(0, 255, 3)
        frames.append(f)
    return write_video(path, frames, fps)


def settings_for(home: Path, **overrides) -> ServerSettings:
    base = {"home": home, "space": SPACE, "api_keys": [KEY], "warm_up": True}
    return ServerSettings(**{**base, **overrides})


@pytest.fixture(scope="module")
def archive_home(tmp_path_factory) -> Path:
    """A home with two clips ingested directly (not through the API)."""
    from search.archive import Archive
    home = tmp_path_factory.mktemp("api-home")
    media = tmp_path_factory.mktemp("api-media")
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    report = Archive(home, SPACE).ingestor(window=1.0).ingest(clips)
    assert report.ingested == 2 and not report.failed
    return home


@pytest.fixture(scope="module")
def client(archive_home):
    with TestClient(create_app(settings_for(archive_home))) as c:
        yield c


def detail(resp) -> str:
    body = resp.json()
    return body["detail"] if isinstance(body["detail"], str) else str(body["detail"])


# --- search ----------------------------------------------------------------------------------
def test_health_and_openapi(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["space"] == SPACE and health["worker_alive"]
    assert health["videos"] == 2 and health["index_vectors"] == health["snippets"] > 0
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/search", "/api/search/example", "/api/snippets/{snippet_id}/thumbnail",
                 "/api/snippets/{snippet_id}/summary", "/api/videos/{video_id}/stream",
                 "/api/uploads/{filename}", "/api/jobs", "/api/jobs/{job_id}", "/api/health",
                 "/metrics"):
        assert path in paths, path
    assert "delete" in paths["/api/videos/{video_id}"]
    assert "application/octet-stream" in paths["/api/uploads/{filename}"]["put"]["requestBody"]["content"]


def test_search_returns_hits_with_urls(client):
    resp = client.get("/api/search", params={"q": "a red thing", "k": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["space"] == SPACE and body["took_ms"] >= 0
    ranks = [h["rank"] for h in body["hits"]]  # adjacent snippets may merge into one moment
    assert ranks == list(range(1, len(ranks) + 1)) and 1 <= len(ranks) <= 3
    hit = body["hits"][0]
    assert hit["thumbnail_url"] == f"/api/snippets/{hit['snippet_id']}/thumbnail"
    assert hit["video_url"] == f"/api/videos/{hit['video_id']}/stream"
    assert "thumbnail" not in hit  # no server paths to thumbnails
    assert 0 <= hit["start"] < hit["end"]


def test_space_tells_languages_and_options(client):
    body = client.get("/api/space").json()
    assert body["space"] == SPACE and "fra_Latn" in body["languages"]
    assert body["needs_language"] is False and body["has_decoder"] is True
    assert body["auto_language"] is True
    assert {"lang", "k", "filters", "rerank", "summaries"} <= set(body["search_options"])
    assert body["rerankers"][0] == "none" and "ac-candidates" in body["rerankers"]
    resp = client.get("/api/search", params={"q": "red", "rerank": "ac-candidates"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rerank"] == "ac-candidates"
    bad = client.get("/api/search", params={"q": "red", "rerank": "no-such-reranker"})
    assert bad.status_code == 400 and "no-such-reranker" in detail(bad)


def test_search_post_and_language_alias(client):
    resp = client.post("/api/search", json={"query": "blue", "lang": "fr", "k": 2})
    assert resp.status_code == 200, resp.text
    assert resp.json()["lang"] == "fra_Latn"


@pytest.mark.parametrize("params, status, words", [
    ({"q": "cat", "lang": "xx_Zzzz"}, 400, "unknown language 'xx_Zzzz'"),
    ({"q": "cat", "k": 0}, 422, "'k'"),
    ({"q": "cat", "k": 1001}, 422, "'k'"),
    ({"q": "cat", "k": "ten"}, 422, "'k'"),
    ({"q": ""}, 422, "'q'"),
    ({}, 422, "'q'"),
])
def test_search_bad_input_is_4xx_naming_it(client, params, status, words):
    resp = client.get("/api/search", params=params)
    assert resp.status_code == status, resp.text
    assert words in detail(resp)


def test_search_option_the_server_does_not_know_is_refused_by_name(client):
    resp = client.post("/api/search", json={"query": "cat", "no_such_filter": 1})
    assert resp.status_code == 422
    assert "no_such_filter" in detail(resp)


def test_search_filters_pass_through(client):
    videos = [v["id"] for v in client.get("/api/videos").json()]
    assert len(videos) == 2
    for video_id in videos:  # each filter keeps only its video, though both match "red" somewhat
        resp = client.post("/api/search", json={"query": "red", "filters": {"video_ids": [video_id]}})
        assert resp.status_code == 200, resp.text
        assert {h["video_id"] for h in resp.json()["hits"]} == {video_id}
    bad = client.post("/api/search", json={"query": "red", "filters": {"min_duration": -1}})
    assert bad.status_code == 422 and "min_duration" in detail(bad)


def test_search_by_example(client):
    hit = client.get("/api/search", params={"q": "red", "k": 1}).json()["hits"][0]
    like = client.post("/api/search/example", data={"snippet_id": hit["snippet_id"], "k": 2})
    assert like.status_code == 200, like.text
    assert like.json()["hits"]
    from PIL import Image
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(png, format="PNG")
    by_image = client.post("/api/search/example", files={"file": ("red.png", png.getvalue(), "image/png")})
    assert by_image.status_code == 200 and by_image.json()["hits"]


@pytest.mark.parametrize("kwargs, status", [
    ({}, 400),
    ({"data": {"snippet_id": 1}, "files": {"file": ("a.png", b"x", "image/png")}}, 400),
    ({"files": {"file": ("a.txt", b"hello", "text/plain")}}, 415),
    ({"files": {"file": ("a.png", b"not a png", "image/png")}}, (415, 422)),
    ({"data": {"snippet_id": 12345}}, 404),
    ({"data": {"snippet_id": 1, "k": 0}}, 422),
])
def test_search_by_example_bad_input(client, kwargs, status):
    resp = client.post("/api/search/example", **kwargs)
    assert resp.status_code in (status if isinstance(status, tuple) else (status,)), resp.text


@pytest.mark.parametrize("name, content_type", [("x.jpg", "image/jpeg"), ("x.mp4", "video/mp4")])
def test_unreadable_example_is_named_by_its_upload_name(client, name, content_type):
    """The query layer reads the example from a temporary copy; the reply names the client's file."""
    resp = client.post("/api/search/example", files={"file": (name, b"\x01\x02 junk", content_type)})
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith(f"{name}: not a readable")
    upload_dir = str(client.app.state.server.upload_dir)
    assert upload_dir not in resp.text and ".examples" not in resp.text


# --- snippets, summaries, media ---------------------------------------------------------------
def test_snippet_details_and_thumbnail(client):
    hit = client.get("/api/search", params={"q": "blue", "k": 1}).json()["hits"][0]
    snip = client.get(f"/api/snippets/{hit['snippet_id']}").json()
    assert snip["video_id"] == hit["video_id"] and snip["start"] == hit["start"]
    assert len(snip["frame_times"]) > 0
    thumb = client.get(hit["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    assert client.get("/api/snippets/999999999").status_code == 404
    assert client.get("/api/snippets/999999999/thumbnail").status_code == 404
    head = client.head(hit["thumbnail_url"])
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(thumb.content)
    assert client.head("/api/snippets/999999999/thumbnail").status_code == 404


def test_summary_in_the_chosen_language(client):
    sid = client.get("/api/search", params={"q": "red", "k": 1}).json()["hits"][0]["snippet_id"]
    resp = client.get(f"/api/snippets/{sid}/summary", params={"lang": "de"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["lang"] == "deu_Latn" and resp.json()["text"].startswith("[deu_Latn]")
    bad = client.get(f"/api/snippets/{sid}/summary", params={"lang": "klingon"})
    assert bad.status_code == 400 and "klingon" in detail(bad)


def test_summary_without_a_decoder_is_422_saying_so(client, monkeypatch):
    space = client.app.state.server.space
    def no_decoder(*a, **k):
        raise errors.NoDecoderError("concept space 'x' has no text decoder")
    monkeypatch.setattr(space, "decode", no_decoder)
    sid = client.get("/api/search", params={"q": "red", "k": 1}).json()["hits"][0]["snippet_id"]
    resp = client.get(f"/api/snippets/{sid}/summary")
    assert resp.status_code == 422 and "no text decoder" in detail(resp)


def test_video_stream_supports_range(client):
    video = client.get("/api/videos").json()[0]
    full = client.get(video["video_url"])
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    size = len(full.content)
    part = client.get(video["video_url"], headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-109/{size}"
    assert part.content == full.content[10:110]
    tail = client.get(video["video_url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == full.content[-50:]
    beyond = client.get(video["video_url"], headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416
    head = client.head(video["video_url"])  # players ask a file's size and type before reading
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == size and head.headers["content-type"] == "video/mp4"
    assert client.get("/api/videos/4242/stream").status_code == 404


def test_head_routes_are_listed_and_answer_the_gets_headers(client):
    paths = client.get("/openapi.json").json()["paths"]
    hit = client.get("/api/search", params={"q": "red", "k": 1}).json()["hits"][0]
    for template, url in (("/api/snippets/{snippet_id}/thumbnail", hit["thumbnail_url"]),
                          ("/api/videos/{video_id}/stream", hit["video_url"])):
        assert {"get", "head"} <= set(paths[template]), template
        assert paths[template]["head"]["operationId"] != paths[template]["get"]["operationId"]
        get, head = client.get(url), client.head(url)
        assert get.status_code == head.status_code == 200 and get.content and head.content == b""
        assert dict(head.headers) == dict(get.headers), url


def test_footage_browsers_cannot_play_streams_as_an_mp4_preview(tmp_path):
    import av

    from samples.footage import write_video
    from search.archive import Archive
    home = tmp_path / "home"
    frames = [np.full((64, 96, 3), (40 * i) % 255, np.uint8) for i in range(24)]
    avi = write_video(tmp_path / "old.avi", frames, fps=8, codec="mpeg4")
    assert Archive(home, SPACE).ingestor(window=1.0).ingest([avi]).ingested == 1
    with TestClient(create_app(settings_for(home))) as c:
        video = c.get("/api/videos").json()[0]
        resp = c.get(video["video_url"])
        assert resp.status_code == 200 and resp.headers["content-type"] == "video/mp4"
        preview = tmp_path / "preview.mp4"
        preview.write_bytes(resp.content)
        with av.open(str(preview)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert abs(float(stream.duration * stream.time_base) - 3.0) < 0.2  # time codes kept
        assert (home / "previews" / f"{video['id']}.mp4").exists()  # made once, then cached
        original = c.get(video["video_url"], params={"original": True})
        assert original.content == avi.read_bytes()
        assert c.delete(f"/api/videos/{video['id']}", headers={"X-API-Key": KEY}).status_code == 200
        assert not (home / "previews" / f"{video['id']}.mp4").exists()


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="search-form"' in page.text
    assert client.get("/static/app.js").status_code == 200


def reachable(metrics: str) -> dict[str, float]:
    """``vidsonar_reachable`` of a /metrics page, by store."""
    from prometheus_client.parser import text_string_to_metric_families
    return {s.labels["store"]: s.value for f in text_string_to_metric_families(metrics)
            if f.name == "vidsonar_reachable" for s in f.samples}


def test_metrics(client):
    client.get("/api/search", params={"q": "red"})
    text = client.get("/metrics").text
    assert 'vidsonar_http_requests_total{method="GET",route="/api/search",status="200"}' in text
    assert "vidsonar_search_seconds_bucket" in text and "vidsonar_index_vectors" in text
    assert reachable(text) == {"catalog": 1.0, "index": 1.0}


# --- errors and keys ---------------------------------------------------------------------------
def test_error_tree_maps_to_http_codes():
    assert status_of(errors.UnknownLanguageError("x", [])) == 400
    assert status_of(errors.DecodeError("f", "bad")) == 422
    assert status_of(errors.UnknownSpaceError("x", [])) == 404
    assert status_of(errors.SpaceMismatchError("x")) == 409
    assert status_of(errors.MissingDependencyError("p", "q")) == 501


def test_writes_need_a_key(client):
    no_key = client.put("/api/uploads/a.mp4", content=b"data")
    assert no_key.status_code == 401 and "X-API-Key" in detail(no_key)
    assert "www-authenticate" in no_key.headers
    wrong = client.delete("/api/videos/1", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403 and "not accepted" in detail(wrong)
    client.cookies.set("vidsonar_key", KEY)
    try:
        cookie_only = client.post("/api/jobs", json={"paths": ["/tmp"]})
    finally:
        client.cookies.clear()
    assert cookie_only.status_code == 401  # cookies never authorize writes (no CSRF)


def test_reads_need_a_key_when_configured(archive_home):
    app = create_app(settings_for(archive_home, read_needs_key=True, warm_up=False))
    with TestClient(app) as c:
        assert c.get("/api/search", params={"q": "red"}).status_code == 401
        assert c.get("/api/search", params={"q": "red"},
                     headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        c.cookies.set("vidsonar_key", KEY)  # what <img> and <video> send
        assert c.get("/api/videos").status_code == 200
        assert c.get("/api/health").status_code == 200  # probes need no key


def test_key_file_made_when_none_configured(tmp_path):
    from api.server.settings import resolve_keys
    keys, path = resolve_keys(ServerSettings(home=tmp_path), tmp_path)
    assert path == tmp_path / "api-key" and len(keys[0]) >= 24
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert resolve_keys(ServerSettings(home=tmp_path), tmp_path)[0] == keys  # stable
    assert resolve_keys(ServerSettings(home=tmp_path, auth_disabled=True), tmp_path) == ([], None)


# --- query batching ------------------------------------------------------------------------------
def test_concurrent_queries_are_batched_and_get_their_own_vectors():
    import threading
    import time as _time

    from api.server.batching import QueryBatcher
    space = HashSpace(SpaceConfig("hash-batch", HASH_SPACE, 16, "e5"))
    calls: list[int] = []

    def slow_encode(texts, lang):
        calls.append(len(texts))
        _time.sleep(0.02)  # long enough for others to arrive while busy
        if lang == "bad":
            raise errors.InputError("bad language")
        return space.encode_query(texts, lang)

    batcher = QueryBatcher(slow_encode)
    texts = [f"query number {i}" for i in range(24)]
    out: dict[int, np.ndarray] = {}
    failures: list[BaseException] = []

    def worker(i):
        try:
            out[i] = batcher([texts[i]], "bad" if i == 5 else "eng_Latn")
        except errors.InputError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(failures) == 1 and 5 not in out  # one bad request fails alone
    for i, vec in out.items():
        np.testing.assert_allclose(vec, space.encode_query([texts[i]], "eng_Latn"), atol=1e-6)
    assert max(calls) > 1 and sum(calls) == 24  # batches formed; every text encoded once
    assert batcher(["a", "b"], None).shape == (2, 16)  # multi-text calls pass straight through
