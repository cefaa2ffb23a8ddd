"""Server settings, read from the environment (``VIDSONAR_*``) or given by ``vidsonar serve``.

Writes (upload, ingest, delete) need an API key unless ``VIDSONAR_AUTH_DISABLED=true`` says
otherwise explicitly; reads need one only with ``VIDSONAR_READ_NEEDS_KEY=true``. With no
``VIDSONAR_API_KEYS`` the server makes one key and keeps it in ``<home>/api-key`` (mode 600),
so a fresh install is never open for writing by accident. A read-only archive
(``VIDSONAR_READ_ONLY=true``, or a home the server cannot write) makes no key: it takes no
writes, and reads that need a key need ``VIDSONAR_API_KEYS`` (or a key file already there).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer.discover import VIDEO_SUFFIXES

KEY_FILE = "api-key"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDSONAR_", extra="ignore")

    home: Path | None = Field(None, description="Data directory; default ~/.vidsonar")
    space: str | None = Field(None, description="Concept space; default the archive's")
    index: str | None = Field(None, description="Vector backend URL: faiss (default), "
                              "milvus:PATH.db or milvus:http://HOST:19530")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated keys accepted for writes (and reads)")
    auth_disabled: bool = Field(False, description="Accept writes without a key (trusted networks only)")
    read_needs_key: bool = Field(False, description="Reads (search, media) need a key too")
    ingest_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Folders (os.pathsep-separated) whose files may be ingested by path")
    upload_dir: Path | None = Field(None, description="Where uploads go; default <home>/uploads")
    max_upload_mb: float = Field(2048.0, gt=0, allow_inf_nan=False,  # inf: int() of it fails
                                 description="Largest upload accepted, in MiB")
    upload_suffixes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: sorted(VIDEO_SUFFIXES), description="File types accepted for upload")
    warm_up: bool = Field(True, description="Load models and the index before serving")
    read_only: bool = Field(False, description="Serve the archive without writing to it (searches "
                            "and media only; writes answer 409); on its own where the home "
                            "cannot be written")

    @field_validator("api_keys", "upload_suffixes", mode="before")
    @classmethod
    def _comma_list(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ingest_roots", mode="before")
    @classmethod
    def _path_list(cls, value):
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("upload_suffixes")
    @classmethod
    def _dotted(cls, value: list[str]) -> list[str]:
        return sorted({s.lower() if s.startswith(".") else f".{s.lower()}" for s in value})

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def resolve_keys(settings: ServerSettings, home: Path,
                 read_only: bool = False) -> tuple[list[str], Path | None]:
    """The keys to accept, and the key file when the key was made here rather than configured."""
    if settings.api_keys or settings.auth_disabled:
        return list(settings.api_keys), None
    path = home / KEY_FILE
    if read_only:
        return _read_only_keys(settings, path)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return [path.read_text().strip()], path


def _read_only_keys(settings: ServerSettings, path: Path) -> tuple[list[str], Path | None]:
    """A read-only home's key file if one is there and readable; else none, which refuses
    nothing (no writes are taken) unless reads need a key: then that is an error now."""
    try:
        return [path.read_text().strip()], None
    except OSError:
        if settings.read_needs_key:
            from vidsonar.errors import InputError
            raise InputError(f"reads need an API key (VIDSONAR_READ_NEEDS_KEY) but the read-only "
                             f"home has no readable {path}, nor can one be made there: set "
                             "VIDSONAR_API_KEYS") from None
        return [], None
