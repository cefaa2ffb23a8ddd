"""Where vidsonar keeps its data: one directory, ``VIDSONAR_HOME``.

Layout::

    $VIDSONAR_HOME/
        catalog.db          SQLite catalog (unless VIDSONAR_DB_URL names another database)
        index/              FAISS index + manifest.json, one per concept space
        thumbs/             JPEG thumbnails, thumbs/<video_id>/<snippet_index>.jpg
        previews/           browser-playable MP4s of footage browsers cannot play, made on demand
        cache/              derived data safe to delete (e.g. label-prompt embeddings);
                            $VIDSONAR_CACHE puts it elsewhere, to share it between archives

A home is read-only when this user cannot write its folder (or its SQLite catalog file), or
when asked (``--read-only``, ``VIDSONAR_READ_ONLY=1``): it is then searched as it is, nothing
in it is created or changed, and commands that write refuse before starting
(``require_writable``). Its cache and new previews go to ``$VIDSONAR_CACHE``, else
``~/.cache/vidsonar``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from vidsonar.errors import NotFoundError, ReadOnlyArchiveError

DEFAULT_HOME = Path("~/.vidsonar")
CATALOG_FILE = "catalog.db"
READ_ONLY_ENV = "VIDSONAR_READ_ONLY"
#: the cache of a read-only home, unless $VIDSONAR_CACHE names one
USER_CACHE = Path("~/.cache/vidsonar")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Home:
    root: Path
    #: why the home is read-only (shown in errors); None where it is written as usual
    read_only_reason: str | None = None

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None,
                read_only: bool | None = None) -> "Home":
        """``path`` if given, else ``$VIDSONAR_HOME``, else ``~/.vidsonar``; created if missing.

        Read-only when ``read_only`` (None: ``$VIDSONAR_READ_ONLY``) or when it cannot be written,
        decided once, here. A read-only home must exist: there is nothing to create it with.
        """
        raw = path or os.environ.get("VIDSONAR_HOME") or DEFAULT_HOME
        root = Path(raw).expanduser().resolve()
        asked = env_flag(READ_ONLY_ENV) if read_only is None else read_only
        reason = ("opened read-only: --read-only or VIDSONAR_READ_ONLY" if asked
                  else _unwritable(root))
        if reason is None:
            root.mkdir(parents=True, exist_ok=True)
        elif not root.is_dir():
            raise NotFoundError(f"no archive at {root}: a read-only home must already hold one")
        return cls(root, reason)

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def require_writable(self, action: str) -> None:
        """Refuse ``action`` (words such as "ingest") on a read-only home, before any work."""
        if self.read_only:
            raise ReadOnlyArchiveError(self.root, action, self.read_only_reason)

    @property
    def db_url(self) -> str:
        return os.environ.get("VIDSONAR_DB_URL") or f"sqlite:///{self.root / CATALOG_FILE}"

    def index_dir(self, space: str) -> Path:
        return self.root / "index" / space

    @property
    def thumbs(self) -> Path:
        return self.root / "thumbs"

    @property
    def previews(self) -> Path:
        return self.root / "previews"

    def preview(self, video_id: int, content_hash: str) -> Path:
        """Where a video's browser preview is, or is to be made: in the home; for a read-only
        home one not made there goes to the cache, named by the footage's digest (ids are this
        archive's own, a digest is the same in every archive sharing the cache)."""
        own = self.previews / f"{video_id}.mp4"
        if self.read_only and not own.exists():
            return self.cache / "previews" / f"{content_hash}.mp4"
        return own

    @property
    def remade_thumbs(self) -> Path:
        """Where thumbnails that went missing are made again: the home's own folder; for a
        read-only home, a folder of the cache kept for this home (ids are this archive's own)."""
        if not self.read_only:
            return self.thumbs
        key = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        return self.cache / "thumbs" / key

    @property
    def cache(self) -> Path:
        default = USER_CACHE if self.read_only else self.root / "cache"
        path = Path(os.environ.get("VIDSONAR_CACHE") or default).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path


def _unwritable(root: Path) -> str | None:
    """Why an existing home cannot be written by this user, or None. ``os.access`` asks the
    kernel, so a read-only mount counts, and root, who may write any folder, is not refused."""
    if root.is_dir() and not os.access(root, os.W_OK):
        return "this user cannot write its folder"
    catalog = root / CATALOG_FILE
    if not os.environ.get("VIDSONAR_DB_URL") and catalog.is_file() \
            and not os.access(catalog, os.W_OK):
        return f"this user cannot write its catalog file {CATALOG_FILE}"
    return None
