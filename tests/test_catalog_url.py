"""A catalog URL that cannot work is told in one line naming what is wrong, before any work:
not a URL, a database vidsonar does not support, a server that refuses the connection."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy.engine import make_url

from storage.catalog import Catalog
from tests.conftest import VIDSONAR
from vidsonar.errors import CatalogRefusedError, InputError


def _info(home, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDSONAR_DB_URL": url, "VIDSONAR_DB_RETRY_SECONDS": "0"}
    return subprocess.run([str(VIDSONAR), "--home", str(home), "info"], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("url,words", [("garbage", "is not a database URL"),
                                       ("mysql://me:secret@db.example/archive", "names a mysql database")])
def test_a_url_that_is_not_a_catalog_is_refused_by_name(tmp_path, url, words):
    with pytest.raises(InputError, match=words):
        Catalog(url)
    proc = _info(tmp_path, url)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and words in lines[0], proc.stderr
    assert "secret" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_server_that_refuses_the_connection_is_told_so(tmp_path, pg_url):
    """A database that does not exist, or a role the server does not know: reachable, refused."""
    url = make_url(pg_url)
    missing_db = url.set(database="no_such_database").render_as_string(hide_password=False)
    with pytest.raises(CatalogRefusedError, match='database "no_such_database" does not exist'):
        Catalog(missing_db)
    unknown_role = url.set(username="nobody_here", password="secret").render_as_string(hide_password=False)
    with pytest.raises(CatalogRefusedError, match="nobody_here"):
        Catalog(unknown_role)
    from api.server.errors import status_of
    try:
        Catalog(missing_db)
    except CatalogRefusedError as exc:
        assert status_of(exc) == 503  # the server's settings, not the client's request
    for url in (missing_db, unknown_role):
        proc = _info(tmp_path, url)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert "refused the connection" in lines[0] and "VIDSONAR_DB_URL" in lines[0]
        assert "secret" not in proc.stderr
