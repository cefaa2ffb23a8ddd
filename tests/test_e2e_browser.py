"""End to end: the real CLI ingests real footage, the real server serves it on 127.0.0.1,
and headless Chromium (Debian's package, driven by playwright; no browser download) uses
the page: search, see thumbnails with time codes, play a hit, see a reel's cuts on its
timeline, upload a file.

Saves a screenshot in the test's temporary folder; with VIDSONAR_SCREENSHOT=PATH set (the
committed benchmarks/results/web-search.png was made so), there instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, VIDSONAR, vidsonar_server, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_ENV = "VIDSONAR_SCREENSHOT"
KEY = "e2e-key"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium "
                    "(apt-get install chromium; `make test` does it)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from samples.footage import make_clip
    home = tmp_path_factory.mktemp("e2e-home")
    media = tmp_path_factory.mktemp("e2e-media")
    for name in ("coffee", "chelsea"):
        make_clip(media / f"{name}.mp4", [name], seconds=6.0)
    make_clip(media / "reel-camera-motorcycle.mp4", ["camera", "motorcycle"], seconds=5.0)  # a cut at 5 s
    make_clip(tmp_path_factory.mktemp("e2e-upload") / "rocket.mp4", ["rocket"], seconds=4.0)
    env = {**os.environ, "VIDSONAR_HOME": str(home), "VIDSONAR_API_KEYS": KEY}
    env.pop("VIDSONAR_SPACE", None)
    subprocess.run([str(VIDSONAR), "ingest", str(media), "--json"], env=env, check=True,
                   capture_output=True, timeout=600, cwd=REPO)
    with vidsonar_server(env) as (url, proc):
        health = wait_healthy(url, proc)
        assert health["videos"] == 3
        yield url, tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    from playwright.sync_api import sync_playwright
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        # a persistent context is playwright's way of giving Chromium a fresh --user-data-dir
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        yield pg
        context.close()


def test_search_shows_thumbnails_with_time_codes_and_plays(server, page):
    url, _ = server
    page.goto(url)
    page.wait_for_selector("#lang option:nth-child(3)", state="attached")  # languages loaded
    page.fill("#q", "una taza de café")  # language left on Auto
    page.click("#search-form button[type=submit]")
    page.wait_for_selector('#results[data-for="una taza de café"] .hit')
    assert "coffee" in page.locator(".hit .name").first.inner_text()
    # the language was left on Auto: the page says which language the server searched as, and how
    query = urllib.parse.urlencode({"q": "una taza de café"})
    with urllib.request.urlopen(f"{url}/api/search?{query}", timeout=30) as resp:
        result = json.loads(resp.read())
    assert result["lang"] and result["lang_source"] in ("detected", "default")
    status = page.inner_text("#status")
    assert f"· {result['lang_source']}: " in status, status

    page.fill("#q", "un chat")
    page.select_option("#lang", "fra_Latn")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector('#results[data-for="un chat"] .hit')
    assert "hits in" in page.inner_text("#status")
    codes = page.locator(".hit .timecode").all_inner_texts()
    assert codes and all(re.fullmatch(r"\d\d:\d\d\.\d–\d\d:\d\d\.\d", c) for c in codes), codes
    scores = [float(s) for s in page.locator(".hit .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert "chelsea" in page.locator(".hit .name").first.inner_text()  # the cat clip first
    page.wait_for_function("[...document.querySelectorAll('.hit img')].every(i => i.complete && i.naturalWidth > 0)")

    later = [i for i, c in enumerate(codes) if not c.startswith("00:00.0")]
    page.locator(".hit").nth(later[0] if later else 0).click()  # one that does not start at 0 s
    page.wait_for_selector("#player:not([hidden])")
    src = page.get_attribute("#video", "src")
    assert re.search(r"/api/videos/\d+/stream#t=", src), src
    start = float(src.split("#t=")[1])
    page.wait_for_function(f"document.querySelector('#video').readyState >= 1 && "
                           f"document.querySelector('#video').currentTime >= {start} - 0.05")
    page.wait_for_function("!document.querySelector('#summary').textContent.startsWith('Loading')")
    assert page.inner_text("#summary")  # a summary, or the API's reason there is none
    # the selected video's moments for the query, on a timeline; Next jumps to the next one
    page.wait_for_selector("#timeline-box:not([hidden]) #timeline .moment")
    marks = page.locator("#timeline .moment").count()
    assert page.inner_text("#moment-pos") == f"moment {page.evaluate('state.momentIndex') + 1} of {marks}"
    page.evaluate("document.querySelector('#video').pause()")  # playing, the time moves on at once
    page.click("#next-moment")
    page.wait_for_function("Math.abs(document.querySelector('#video').currentTime - "
                           "state.moments[state.momentIndex].start) < 0.05")
    shot = Path(os.environ.get(SCREENSHOT_ENV) or server[1] / "web-search.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a real page, not a blank image


def open_hit(page, query: str, name: str) -> dict:
    """Search in English, click the first hit of the video called ``name``; the hit played."""
    page.fill("#q", query)
    page.select_option("#lang", "eng_Latn")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(f'#results[data-for="{query}"] .hit')
    page.locator(".hit", has_text=name).first.click()
    page.wait_for_selector("#timeline-box:not([hidden]) #timeline .moment")
    return page.evaluate("state.current")


def test_timeline_draws_the_videos_cuts_under_the_moments(server, page):
    url, _ = server
    page.goto(url)
    page.wait_for_selector("#lang option:nth-child(3)", state="attached")
    hit = open_hit(page, "a motorcycle", "reel-camera-motorcycle")
    with urllib.request.urlopen(f"{url}/api/videos/{hit['video_id']}", timeout=30) as resp:
        shots = json.loads(resp.read())["shots"]
    cuts = [s["start"] for s in shots if s["start"] > 0]
    assert len(cuts) == 1 and abs(cuts[0] - 5.0) < 0.2, shots  # the detector found the reel's cut
    page.wait_for_function(f"document.querySelector('#timeline').dataset.cuts === '{len(cuts)}'")
    drawn = page.evaluate("""() => {
        const bar = document.querySelector('#timeline').getBoundingClientRect();
        return [...document.querySelectorAll('#timeline .cut')].map((c) => {
            const r = c.getBoundingClientRect();
            return {at: +c.dataset.at, x: (r.left + r.width / 2 - bar.left) / bar.width,
                    visible: r.width > 0 && r.height >= bar.height};
        });
    }""")
    length = page.evaluate("state.timelineLength")
    assert [d["at"] for d in drawn] == cuts
    assert all(d["visible"] for d in drawn), drawn
    assert all(abs(d["x"] - d["at"] / length) < 0.01 for d in drawn), (drawn, length)  # at the cut
    # under the hit markers: before them in the bar and on a lower layer
    order = page.evaluate("[...document.querySelector('#timeline').children].map((e) => e.className)")
    assert order.index("cut") < min(i for i, c in enumerate(order) if c.startswith("moment")), order
    z = page.evaluate("[getComputedStyle(document.querySelector('#timeline .cut')).zIndex, "
                      "getComputedStyle(document.querySelector('#timeline .moment')).zIndex]")
    assert int(z[0]) < int(z[1]), z
    # a one-shot clip has no cut to draw
    open_hit(page, "a cup of coffee", "coffee.mp4")
    page.wait_for_function("document.querySelector('#timeline').dataset.cuts === '0'")
    assert page.locator("#timeline .cut").count() == 0


def test_upload_through_the_page(server, page):
    url, base = server
    upload = next(base.glob("e2e-upload*")) / "rocket.mp4"
    page.goto(url)
    page.click("#key-box summary")
    page.fill("#api-key", KEY)
    page.click("#save-key")
    page.set_input_files("#upload-file", str(upload))
    page.click("#upload-form button[type=submit]")
    page.wait_for_function("document.querySelector('#upload-status').textContent.includes('queued')")
    # the list shows every ingestion run, the CLI's that built this archive too: find the upload's
    upload_job = "[...document.querySelectorAll('#jobs li')].find(li => li.textContent.includes('rocket.mp4'))"
    page.wait_for_function(f"({upload_job})?.textContent.includes('done')", timeout=120_000)
    assert "1 ingested" in page.evaluate(f"({upload_job}).textContent")
    page.wait_for_function("document.querySelector('#archive-info').textContent.startsWith('4 videos')")
