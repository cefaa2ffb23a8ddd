"""Settings read from the environment, each checked where it is read."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

from vidsonar.errors import InputError


def env_seconds(name: str, default: float, valid: Callable[[float], bool], advice: str) -> float:
    """``$name`` as a number of seconds, ``default`` where unset or blank; ``InputError``
    ``NAME='text'`` followed by ``advice`` where it is not a number that ``valid`` accepts
    (NaN, which no comparison accepts, included)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not valid(seconds):
        raise InputError(f"{name}={text!r}{advice}")
    return seconds
