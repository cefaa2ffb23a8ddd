"""Helpers for tests of homes that cannot be written. Tests run as root, who may write any
folder whatever its mode, so a home is made read-only the way the code detects it."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(monkeypatch, root: Path) -> None:
    """``root`` and everything in it read-only as the code sees it (``os.access(..., W_OK)``)."""
    real, root = os.access, root.resolve()

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and isinstance(path, (str, os.PathLike)) \
                and Path(path).resolve().is_relative_to(root):
            return False
        return real(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "access", access)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: (size, mtime in ns). Any write changes it."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}
