"""A real full disk for tests: a tiny tmpfs mounted on a folder, filled but for a little room.

Writes there fail as on any full disk (ENOSPC from the kernel, in Python and in the ffmpeg
program alike). Mounting needs root with CAP_SYS_ADMIN; without it the test skips, naming that.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096


@contextmanager
def full_tmpfs(folder: Path, room_pages: int = 0, pages: int = 16) -> Iterator[Path]:
    """``folder`` (made if missing) on a tmpfs of ``pages`` pages, all but ``room_pages`` of
    them taken by a file named ``filler``; unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages * PAGE}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"needs to mount a tiny tmpfs to fill a disk (root with CAP_SYS_ADMIN): "
                    f"{mounted.stderr.strip()}")
    try:
        (folder / "filler").write_bytes(b"\0" * ((pages - room_pages) * PAGE))
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
