"""What the catalog holds never makes the API answer 500.

JSON has no NaN or infinity, yet a catalog can hold them: a container may report an infinite
duration, PostgreSQL keeps NaN, a JSON column keeps ``NaN`` in a snippet's frame times. Such
a number is sent as null, where the route's documented schema allows null. A file gone from
disk (a video, a thumbnail) is a 404 that names it; one no longer a video, a 422 that names
it. The rows are changed here by SQL, under the server, as a damaged or hand-edited catalog
would leave them; SQLite stores NaN as NULL, so its REAL columns get infinities and NaN is
checked where it survives (JSON, the models).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.server import create_app
from api.server.schemas import HitOut, SearchOut, VideoOut
from storage.catalog import Snippet, Video
from storage.shots import ShotRow
from tests.test_api import SPACE, settings_for, write_clip

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (vidsonar[test]) is not installed")

INF = float("inf")


@pytest.fixture
def home(tmp_path) -> Path:
    """A fresh archive of two clips (each test damages its own catalog)."""
    from search.archive import Archive
    home, media = tmp_path / "home", tmp_path / "media"
    home.mkdir()
    media.mkdir()
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    assert Archive(home, SPACE).ingestor(window=1.0).ingest(clips).ingested == 2
    return home


def catalog_of(home: Path):
    from storage.catalog import Catalog
    from vidsonar.home import Home
    return Catalog(Home(home).db_url)


def damage(home: Path, *statements) -> None:
    """Run SQL updates on the archive's catalog, as a damaged catalog would hold them."""
    catalog = catalog_of(home)
    with catalog.session() as s:
        for statement in statements:
            s.execute(statement)
    catalog.engine.dispose()


def serve(home: Path) -> TestClient:
    """A client that answers a server error as a 500 reply, as a real client would see it."""
    return TestClient(create_app(settings_for(home)), raise_server_exceptions=False)


def check_reply(client: TestClient, method: str, url: str, template: str | None = None, **kwargs):
    """The reply's JSON, after checking a 200 whose body matches the route's documented schema."""
    resp = client.request(method, url, **kwargs)
    assert resp.status_code == 200, f"{method} {url}: {resp.status_code} {resp.text[:300]}"
    body = resp.json()
    doc = client.get("/openapi.json").json()
    schema = doc["paths"][template or url][method.lower()]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
    return body


def snippet_ids(home: Path) -> list[int]:
    catalog = catalog_of(home)
    with catalog.session() as s:
        ids = list(s.scalars(sa.select(Snippet.id).order_by(Snippet.id)))
    catalog.engine.dispose()
    return ids


# --- non-finite numbers ----------------------------------------------------------------------
def test_infinite_video_numbers_are_null_in_videos_and_info(home):
    damage(home, sa.update(Video).where(Video.id == 1).values(duration=INF, fps=-INF))
    with serve(home) as client:
        listed = check_reply(client, "GET", "/api/videos")
        one = check_reply(client, "GET", "/api/videos/1", "/api/videos/{video_id}")
        info = check_reply(client, "GET", "/api/info")
        hits = check_reply(client, "GET", "/api/search", params={"q": "red", "k": 5})["hits"]
    first = next(v for v in listed if v["id"] == 1)
    assert first["duration"] is None and first["fps"] is None
    assert one["duration"] is None and one["fps"] is None
    assert next(v for v in listed if v["id"] == 2)["duration"] > 0  # the others are as stored
    assert info["hours"] is None  # the sum of durations is infinite too
    assert hits and all(h["start"] is not None and h["end"] is not None for h in hits)


def test_non_finite_snippet_and_shot_times(home):
    """A snippet whose time is not a number is shown (null) but never grounded: it has no
    place on its video's time line, and search without it still answers."""
    first, second = snippet_ids(home)[:2]
    damage(home,
           sa.update(Snippet).where(Snippet.id == first).values(start=INF),
           sa.update(Snippet).where(Snippet.id == second).values(frame_times=[math.nan, INF, 1.5]),
           sa.update(ShotRow).where(ShotRow.video_id == 2).values(end=INF))
    with serve(home) as client:
        snip = check_reply(client, "GET", f"/api/snippets/{first}", "/api/snippets/{snippet_id}")
        framed = check_reply(client, "GET", f"/api/snippets/{second}", "/api/snippets/{snippet_id}")
        video = check_reply(client, "GET", "/api/videos/2", "/api/videos/{video_id}")
        replies = [check_reply(client, "GET", "/api/search", params={"q": q, "k": 5, "snap_shots": snap})
                   for q in ("red", "blue") for snap in (True, False)]
        replies.append(check_reply(client, "POST", "/api/search/example", data={"snippet_id": second}))
    assert snip["start"] is None and snip["end"] == 1.0
    assert framed["frame_times"] == [None, None, 1.5]
    assert video["shots"][0]["end"] is None
    for reply in replies:
        assert reply["hits"]
        for hit in reply["hits"]:
            assert first not in hit["snippet_ids"]
            assert None not in (hit["start"], hit["end"], hit["score"])


def test_reply_models_make_non_finite_numbers_null_on_any_serialization():
    """Not only FastAPI's pydantic fast path (which writes null itself): ``model_dump`` and
    ``json.dumps`` (the path of a custom response class or an older FastAPI) too."""
    video = VideoOut.model_validate({
        "id": 1, "path": "/x.mp4", "status": "ok", "error": None, "duration": math.nan,
        "width": 8, "height": 8, "fps": INF, "size_bytes": 1, "ingested_at": "2024-01-01T00:00:00",
        "video_url": "/api/videos/1/stream"})
    assert (video.duration, video.fps) == (None, None)
    hit = HitOut.model_validate({
        "rank": 1, "score": math.nan, "snippet_id": 1, "video_id": 1, "video_path": "/x.mp4",
        "start": -INF, "end": 1.0, "thumbnail_url": "t", "video_url": "v",
        "video_moments": [{"start": 0.0, "end": INF, "score": 0.5, "snippet_id": 1}],
        "summary": {"text": "x", "confidence": math.nan}, "duplicates": [1]})  # extras
    result = SearchOut.model_validate({"space": "s", "took_ms": 1.0, "hits": [hit.model_dump()],
                                       "detected_language": {"code": "fra_Latn", "confidence": INF}})
    dumped = json.loads(json.dumps(result.model_dump(mode="json"), allow_nan=False))
    sent = dumped["hits"][0]
    assert (sent["score"], sent["start"], sent["video_moments"][0]["end"]) == (None, None, None)
    assert sent["summary"] == {"text": "x", "confidence": None} and sent["duplicates"] == [1]
    assert dumped["detected_language"] == {"code": "fra_Latn", "confidence": None}


def test_openapi_says_every_stored_float_of_a_reply_may_be_null(home):
    with serve(home) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    bare = [f"{name}.{field}" for name, schema in schemas.items() if name.endswith("Out")
            for field, prop in schema.get("properties", {}).items()
            if _bare_number(prop) and field != "took_ms"]  # took_ms: the server's own clock
    assert not bare, f"floats that a reply may send as null but the schema says cannot be: {bare}"


def _bare_number(prop: dict) -> bool:
    """A number (or list of numbers) whose schema does not allow null."""
    if prop.get("type") == "array":
        return _bare_number(prop.get("items", {}))
    return prop.get("type") == "number"


# --- files gone from disk --------------------------------------------------------------------
def test_stream_of_a_video_whose_file_is_gone_is_a_404_naming_it(home):
    damage(home, sa.update(Video).where(Video.id == 1).values(path=str(home / "moved.mp4")))
    with serve(home) as client:
        for method in ("GET", "HEAD"):
            for params in ({}, {"original": True}):
                resp = client.request(method, "/api/videos/1/stream", params=params)
                assert resp.status_code == 404, (method, params, resp.text)
        body = client.get("/api/videos/1/stream").json()
    assert "moved.mp4" in body["detail"] and "re-ingest" in body["detail"]


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])  # streamed as it is; through a preview
def test_stream_of_a_file_no_longer_a_video_is_a_422_naming_it(home, tmp_path, suffix):
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"not a video any more\n" * 50)
    damage(home, sa.update(Video).where(Video.id == 1).values(path=str(junk)))
    with serve(home) as client:
        resp = client.get("/api/videos/1/stream")
        assert resp.status_code == 422 and junk.name in resp.json()["detail"], resp.text
        assert client.head("/api/videos/1/stream").status_code == 422
        raw = client.get("/api/videos/1/stream", params={"original": True})  # the bytes as they are
        assert raw.status_code == 200 and raw.content == junk.read_bytes()
    assert not (home / "previews" / "1.mp4").exists()  # nothing cached to serve later


def test_thumbnail_whose_file_is_gone_with_its_video_is_a_404(home):
    """A missing thumbnail is made again from its video (tests/test_thumb_repair.py); with the
    video file gone too, the snippet stays listed and its thumbnail is a 404, not a 500."""
    sid = snippet_ids(home)[0]
    (home / "thumbs" / "1" / "0.jpg").unlink()
    with serve(home) as client:
        video = client.get("/api/videos/1").json()
    Path(video["path"]).unlink()
    with serve(home) as client:
        assert client.get(f"/api/snippets/{sid}").status_code == 200  # the snippet is there
        resp = client.get(f"/api/snippets/{sid}/thumbnail")
        assert resp.status_code == 404 and video["path"] in resp.json()["detail"]
        assert client.head(f"/api/snippets/{sid}/thumbnail").status_code == 404
        hits = client.get("/api/search", params={"q": "red", "k": 5}).json()["hits"]
        assert all(h["thumbnail_url"].startswith("/api/snippets/") for h in hits)


# --- files removed while a reply is under way -------------------------------------------------
def removing_as_the_reply_starts(app, path: Path):
    """``app``, deleting ``path`` when a reply's headers go out: after the route returned,
    before the body is read (a folder cleaned, a re-ingest replacing the file)."""
    async def wrapped(scope, receive, send):
        async def send_and_remove(message):
            if message["type"] == "http.response.start":
                path.unlink(missing_ok=True)
            await send(message)
        await app(scope, receive, send_and_remove if scope["type"] == "http" else send)
    return wrapped


def test_a_file_removed_after_the_route_opened_it_is_still_sent_whole(home):
    sid = snippet_ids(home)[0]
    with serve(home) as client:
        video = Path(client.get("/api/videos/1").json()["path"])
        thumb = client.app.state.server.archive.thumbnail(sid)
    cases = [(video, "GET", "/api/videos/1/stream", {}, 200, None),
             (video, "GET", "/api/videos/1/stream", {"original": True}, 200, None),
             (video, "GET", "/api/videos/1/stream", {}, 206, "bytes=10-109"),
             (video, "HEAD", "/api/videos/1/stream", {}, 200, None),
             (thumb, "GET", f"/api/snippets/{sid}/thumbnail", {}, 200, None)]
    saved = {path: path.read_bytes() for path, *_ in cases}
    for path, method, url, params, status, byte_range in cases:
        path.write_bytes(saved[path])
        app = create_app(settings_for(home))
        with TestClient(removing_as_the_reply_starts(app, path), raise_server_exceptions=False) as client:
            resp = client.request(method, url, params=params,
                                  headers={"Range": byte_range} if byte_range else {})
        assert not path.exists()  # removed as the reply started
        assert resp.status_code == status, (method, url, resp.text[:200])
        whole = b"" if method == "HEAD" else saved[path]
        assert resp.content == (whole[10:110] if byte_range else whole), (method, url, params)
        assert int(resp.headers["content-length"]) == (100 if byte_range else len(saved[path]))


def test_a_file_removed_between_the_routes_check_and_the_reply_is_a_404_naming_it(home, monkeypatch):
    import indexer.previews
    from search.archive import Archive
    sid = snippet_ids(home)[0]
    playable, thumbnail = indexer.previews.browser_playable, Archive.thumbnail

    def playable_then_removed(path):
        answer = playable(path)
        Path(path).unlink()
        return answer

    def thumbnail_then_removed(self, snippet_id):
        path = thumbnail(self, snippet_id)
        path.unlink()
        return path
    monkeypatch.setattr(indexer.previews, "browser_playable", playable_then_removed)
    monkeypatch.setattr(Archive, "thumbnail", thumbnail_then_removed)
    with serve(home) as client:
        video = Path(client.get("/api/videos/1").json()["path"])
        saved = video.read_bytes()
        for method in ("GET", "HEAD"):
            video.write_bytes(saved)  # for the route's check; removed again before the reply
            resp = client.request(method, "/api/videos/1/stream")
            assert resp.status_code == 404, (method, resp.text[:200])
            video.write_bytes(saved)  # the thumbnail is made again from it, then removed
            thumb = client.request(method, f"/api/snippets/{sid}/thumbnail")
            assert thumb.status_code == 404, (method, thumb.text[:200])
            if method == "GET":
                assert str(video) in resp.json()["detail"] and "re-ingest" in resp.json()["detail"]
                assert "thumbnail" in thumb.json()["detail"] and "again" in thumb.json()["detail"]
