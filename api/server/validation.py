"""Bounds and types for what requests carry, declared once so bad input is a 4xx, never a 500.

Ids are int64 in the catalog and in FAISS: a path or form id outside ``0..2**63-1`` is refused
by FastAPI's validation (422, naming the parameter) before a route runs, instead of
overflowing the database driver.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

INT64_MAX = 2**63 - 1

SnippetId = Annotated[int, Path(ge=0, le=INT64_MAX, description="A snippet id (int64)")]
VideoId = Annotated[int, Path(ge=0, le=INT64_MAX, description="A video id (int64)")]
JobId = Annotated[int, Path(ge=0, le=INT64_MAX, description="An ingestion job id (int64)")]
