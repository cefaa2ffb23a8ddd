"""Where vidsonar keeps its data: one directory, ``VIDSONAR_HOME``.

Layout::

    $VIDSONAR_HOME/
        catalog.db          SQLite catalog (unless VIDSONAR_DB_URL names another database)
        index/              FAISS index + manifest.json, one per concept space
        thumbs/             JPEG thumbnails, thumbs/<video_id>/<snippet_index>.jpg
        previews/           browser-playable MP4s of footage browsers cannot play, made on demand
        cache/              derived data safe to delete (e.g. label-prompt embeddings);
                            $VIDSONAR_CACHE puts it elsewhere, to share it between archives
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.vidsonar")


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None) -> "Home":
        """``path`` if given, else ``$VIDSONAR_HOME``, else ``~/.vidsonar``."""
        raw = path or os.environ.get("VIDSONAR_HOME") or DEFAULT_HOME
        root = Path(raw).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def db_url(self) -> str:
        return os.environ.get("VIDSONAR_DB_URL") or f"sqlite:///{self.root / 'catalog.db'}"

    def index_dir(self, space: str) -> Path:
        return self.root / "index" / space

    @property
    def thumbs(self) -> Path:
        return self.root / "thumbs"

    @property
    def previews(self) -> Path:
        return self.root / "previews"

    @property
    def cache(self) -> Path:
        path = Path(os.environ.get("VIDSONAR_CACHE") or self.root / "cache").expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
