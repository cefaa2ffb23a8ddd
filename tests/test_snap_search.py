"""Search snaps moments to shots: on a catalog with shots, through the Searcher, the HTTP API
and the CLI.

The archive is made by hand (tests.fakes.add_video plus storage.shots.record_shots) so the
query's score of every snippet is chosen: the hash space's query vector for a word, and
snippet vectors at chosen cosines to it. Two videos score alike; only the first has shots.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import main
from api.server import ServerSettings, create_app
from search.archive import Archive
from storage.shots import record_shots, shot_spans
from tests.fakes import HASH_SPACE, add_video, hash_space

KEY = "snap-key"
QUERY = "lighthouse"
#: 4 s snippets; the peak [8, 12) is alone for grounding (its neighbours fall outside the margin)
#: but its shot [8, 20) scores >= 0.8 x the peak throughout: snapped, the moment is [8, 20)
SCORES = [0.6, 0.6, 0.9, 0.8, 0.78, 0.6]
SHOTS = [(0.0, 8.0), (8.0, 20.0), (20.0, 24.0)]


def vectors_scoring(query: np.ndarray, scores: list[float], seed: int) -> np.ndarray:
    """Unit vectors whose cosines with ``query`` are ``scores`` (random otherwise)."""
    q = query / np.linalg.norm(query)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(np.column_stack([q, rng.standard_normal((len(q), len(scores)))]))
    others = basis[:, 1:].T  # orthonormal, orthogonal to q
    c = np.asarray(scores)[:, None]
    return (c * q + np.sqrt(1 - c ** 2) * others).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def registered_hash_space():
    """The server opens its space by name: the hash space is registered for this module only."""
    with hash_space(HASH_SPACE):
        yield


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("snap-home")
    archive = Archive(home, HASH_SPACE)
    q = archive.space.encode_query([QUERY], "eng_Latn")[0]
    with_shots, _ = add_video(archive.catalog, vectors_scoring(q, SCORES, 1), HASH_SPACE, path="/v/cuts.mp4")
    record_shots(archive.catalog, with_shots, SHOTS, "scenedetect", 40.0)
    add_video(archive.catalog, vectors_scoring(q, SCORES, 2), HASH_SPACE, path="/v/no-shots.mp4")
    return home


@pytest.fixture
def searcher(home):
    return Archive(home, HASH_SPACE).searcher()


def spans_of(hits) -> dict[str, tuple[float, float, bool]]:
    """The top moment of each video: path -> (start, end, snapped); hits as Hits or JSON."""
    out: dict[str, tuple[float, float, bool]] = {}
    for h in hits:
        h = h if isinstance(h, dict) else asdict(h)
        out.setdefault(h["video_path"], (h["start"], h["end"], h["snapped"]))
    return out


def test_shot_spans_of_videos_with_shots_only(searcher):
    videos = {v.path: v.id for v in searcher.catalog.videos()}
    assert shot_spans(searcher.catalog, list(videos.values())) == {videos["/v/cuts.mp4"]: SHOTS}


def test_shot_spans_leave_out_shots_whose_times_are_not_numbers(catalog_url):
    """A damaged row (an infinite end; NaN, which PostgreSQL keeps and SQLite cannot store in
    these NOT NULL columns) is no shot to snap to."""
    from storage.catalog import Catalog
    catalog = Catalog(catalog_url)
    video, _ = add_video(catalog, np.eye(3, 8, dtype=np.float32), HASH_SPACE)
    inf, nan = float("inf"), float("nan")
    damaged = [(0.0, inf), (-inf, 4.0), (inf, inf)]
    if catalog.engine.dialect.name == "postgresql":
        damaged += [(nan, 6.0), (8.0, nan)]
    record_shots(catalog, video, [*damaged, *SHOTS], "scenedetect", 40.0)
    assert shot_spans(catalog, [video]) == {video: SHOTS}
    record_shots(catalog, video, damaged, "scenedetect", 40.0)
    assert shot_spans(catalog, [video]) == {}  # as a video without shots
    catalog.engine.dispose()


def test_a_damaged_shot_leaves_the_moment_to_the_real_shots(tmp_path):
    """The first shot's end made infinite: it no longer holds the moment's start and end
    (before, it did, and hid the shot [8, 20) the moment snaps to)."""
    home = tmp_path / "home"
    archive = Archive(home, HASH_SPACE)
    q = archive.space.encode_query([QUERY], "eng_Latn")[0]
    video, _ = add_video(archive.catalog, vectors_scoring(q, SCORES, 1), HASH_SPACE, path="/v/cuts.mp4")
    record_shots(archive.catalog, video, [(0.0, float("inf")), *SHOTS[1:]], "scenedetect", 40.0)
    archive.catalog.engine.dispose()
    settings = ServerSettings(home=home, space=HASH_SPACE, api_keys=[KEY], warm_up=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        got = client.get("/api/search", params={"q": QUERY, "lang": "eng_Latn", "k": 6})
    assert got.status_code == 200, got.text
    hits = got.json()["hits"]
    assert spans_of(hits)["/v/cuts.mp4"] == (8.0, 20.0, True)
    times = [t for h in hits for m in [h, *h["video_moments"]] for t in (m["start"], m["end"])]
    assert all(t is not None and 0.0 <= t <= 24.0 for t in times), times


def test_search_snaps_the_moment_of_a_video_with_shots_by_default(searcher):
    hits = searcher.search(QUERY, lang="eng_Latn", k=6).hits
    top = spans_of(hits)
    assert top["/v/cuts.mp4"] == (8.0, 20.0, True)  # the whole matching shot
    assert top["/v/no-shots.mp4"] == (8.0, 12.0, False)  # nothing to snap to
    snapped = next(h for h in hits if h.snapped)
    assert len(snapped.snippet_ids) == 3  # the shot's three snippets
    listed = {(m["start"], m["end"], m["snapped"]) for m in snapped.video_moments}
    assert (8.0, 20.0, True) in listed
    spans = sorted((m["start"], m["end"]) for m in snapped.video_moments)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # the timeline's moments apart


def test_snapping_is_optional_per_request(searcher):
    hits = searcher.search(QUERY, lang="eng_Latn", k=6, snap_shots=False).hits
    assert spans_of(hits)["/v/cuts.mp4"] == (8.0, 12.0, False)
    assert not any(h.snapped for h in hits)
    searcher.snap_shots = False  # the searcher's default, as a benchmark sets it
    assert spans_of(searcher.search(QUERY, lang="eng_Latn", k=6).hits)["/v/cuts.mp4"] == (8.0, 12.0, False)
    assert spans_of(searcher.search(QUERY, lang="eng_Latn", k=6, snap_shots=True).hits)[
        "/v/cuts.mp4"] == (8.0, 20.0, True)


@pytest.fixture(scope="module")
def client(home):
    settings = ServerSettings(home=home, space=HASH_SPACE, api_keys=[KEY], warm_up=False)
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_field_snap_shots(client):
    got = client.get("/api/search", params={"q": QUERY, "lang": "eng_Latn", "k": 6})
    assert got.status_code == 200, got.text
    assert spans_of(got.json()["hits"])["/v/cuts.mp4"] == (8.0, 20.0, True)
    hit = next(h for h in got.json()["hits"] if h["snapped"])
    assert any(m["snapped"] for m in hit["video_moments"])
    off = client.get("/api/search", params={"q": QUERY, "lang": "eng_Latn", "k": 6, "snap_shots": "false"})
    assert spans_of(off.json()["hits"])["/v/cuts.mp4"] == (8.0, 12.0, False)
    posted = client.post("/api/search", json={"query": QUERY, "lang": "eng_Latn", "k": 6, "snap_shots": False})
    assert posted.status_code == 200, posted.text
    assert spans_of(posted.json()["hits"])["/v/cuts.mp4"] == (8.0, 12.0, False)
    assert "snap_shots" in client.get("/api/space").json()["search_options"]
    bad = client.post("/api/search", json={"query": QUERY, "snap_shots": "sometimes"})
    assert bad.status_code == 422 and "snap_shots" in bad.text


def test_cli_flag_no_snap_shots(home):
    args = ["--home", str(home), "--space", HASH_SPACE, "search", QUERY, "--lang", "eng_Latn", "-k", "6"]
    runner = CliRunner()
    on = runner.invoke(main, args + ["--json"])
    off = runner.invoke(main, args + ["--json", "--no-snap-shots"])
    assert on.exit_code == 0 and off.exit_code == 0, on.output + off.output
    assert spans_of(json.loads(on.output)["hits"])["/v/cuts.mp4"] == (8.0, 20.0, True)
    assert spans_of(json.loads(off.output)["hits"])["/v/cuts.mp4"] == (8.0, 12.0, False)
    text = runner.invoke(main, args)
    assert "00:08.000-00:20.000  /v/cuts.mp4" in text.output and "snapped to shot" in text.output
