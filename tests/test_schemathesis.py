"""A bounded schemathesis run over the server's OpenAPI: no generated request gets a 5xx.

The real app runs in-process (ASGI, its lifespan started once, ingest worker included) over an
archive with two clips ingested in the deterministic hash space of ``test_api``. Every
operation gets up to ``EXAMPLES`` schema-conforming requests and as many schema-violating
ones (schemathesis's positive and negative modes), derandomized so a failure reproduces;
writes carry the API key so they reach the routes instead of stopping at 401. Each 5xx is
collected with its curl command, and the test prints how many requests it made.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (vidsonar[test]) is not installed")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from api.server import create_app  # noqa: E402
from tests.test_api import KEY, SPACE, settings_for, write_clip  # noqa: E402

# the server opens its space by name: the hash space is registered for this module
pytestmark = pytest.mark.usefixtures("registered_hash_space")

EXAMPLES = int(os.environ.get("VIDSONAR_SCHEMATHESIS_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    from search.archive import Archive
    home = tmp_path_factory.mktemp("st-home")
    media = tmp_path_factory.mktemp("st-media")
    clips = [write_clip(media / "red.mp4", (200, 30, 30)), write_clip(media / "blue.mp4", (30, 30, 200))]
    assert Archive(home, SPACE).ingestor(window=1.0).ingest(clips).ingested == 2
    return home


@pytest.fixture
def app(home):
    """The app, for schemathesis to start (it runs the lifespan once, on its first request)."""
    from schemathesis.python.asgi import shutdown_lifespans
    yield create_app(settings_for(home, ingest_roots=[home.parent]))
    shutdown_lifespans()  # stops the lifespan: the ingest worker, then the archive


def test_no_generated_request_gets_a_server_error(app):
    from schemathesis import GenerationMode
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    requests, errors = 0, []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15  # the whole API, not a fragment of it

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def run(case):
                nonlocal requests
                headers = {"X-API-Key": KEY} if case.method.upper() in ("PUT", "POST", "DELETE") else {}
                requests += 1
                try:
                    response = case.call(headers=headers)
                except Exception as exc:  # what the ASGI client re-raises is a 500 to a client
                    errors.append(f"500 {case.as_curl_command()}\n  {type(exc).__name__}: {exc}")
                    return
                if response.status_code >= 500:
                    errors.append(f"{response.status_code} {case.as_curl_command()}\n"
                                  f"  {response.text[:300]}")

            try:
                run()
            except Unsatisfiable:  # nothing to violate: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE
    print(f"\nschemathesis: {requests} requests over {len(operations)} operations, "
          f"{len(errors)} server errors")
    assert requests >= len(operations) * 2
    assert not errors, "\n".join(errors[:20])


ID_EDGES = [0, 2**63 - 1, 2**63, 2**64 + 1, 227678137897025568768, -1]


def test_every_integer_path_parameter_bounds_int64(home):
    """Each id in a path, at and past int64's edges: a 404 or a 422 naming the bound, never a
    500 (SQLite's driver overflows past 2**63 - 1; it used to answer 500)."""
    from fastapi.testclient import TestClient
    app = create_app(settings_for(home))
    schema = app.openapi()
    checked = []
    with TestClient(app) as client:
        for path, methods in schema["paths"].items():
            for method, op in methods.items():
                params = [p["name"] for p in op.get("parameters", [])
                          if p["in"] == "path" and p["schema"].get("type") == "integer"]
                for name in params:
                    assert p_bounds(op, name) == (0, 2**63 - 1), f"{method} {path} {name}"
                    for value in ID_EDGES:
                        url = path.replace("{" + name + "}", str(value))
                        resp = client.request(method.upper(), url, headers={"X-API-Key": KEY})
                        in_range = 0 <= value <= 2**63 - 1
                        assert resp.status_code in ((404,) if in_range else (422,)), \
                            f"{method} {url}: {resp.status_code} {resp.text[:200]}"
                    checked.append(f"{method.upper()} {path}")
    assert {"GET /api/snippets/{snippet_id}", "GET /api/snippets/{snippet_id}/summary",
            "GET /api/snippets/{snippet_id}/thumbnail", "GET /api/videos/{video_id}",
            "GET /api/videos/{video_id}/stream", "DELETE /api/videos/{video_id}",
            "GET /api/jobs/{job_id}"} <= set(checked)


def p_bounds(op: dict, name: str) -> tuple[int | None, int | None]:
    schema = next(p["schema"] for p in op["parameters"] if p["name"] == name)
    return schema.get("minimum"), schema.get("maximum")
