"""Bounds and types for what requests carry, declared once so bad input is a 4xx, never a 500.

Ids are int64 in the catalog and in FAISS: a path or form id outside ``0..2**63-1`` is refused
by FastAPI's validation (422, naming the parameter) before a route runs, instead of
overflowing the database driver. Search options passed through by name are checked against
the query layer's type hints, so ``{"beam_size": "many"}`` is a 400 that names the option.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from fastapi import Path
from pydantic import TypeAdapter, ValidationError

from vidsonar.errors import InputError

INT64_MAX = 2**63 - 1

SnippetId = Annotated[int, Path(ge=0, le=INT64_MAX, description="A snippet id (int64)")]
VideoId = Annotated[int, Path(ge=0, le=INT64_MAX, description="A video id (int64)")]
JobId = Annotated[int, Path(ge=0, le=INT64_MAX, description="An ingestion job id (int64)")]


def typed_options(method, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked (and coerced, "3" -> 3) against ``method``'s type hints."""
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # hints naming something unimportable here: pass values as given
        return options
    out = {}
    for name, value in options.items():
        hint = hints.get(name)
        if hint is None:
            out[name] = value
            continue
        try:
            out[name] = TypeAdapter(hint).validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0].get("msg", "invalid value")
            raise InputError(f"search option {name!r}: {problem} (got {value!r:.80})") from None
    return out
