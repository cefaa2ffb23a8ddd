"""One space name, one model: a run refuses to add vectors that the archive's own vectors of
that space cannot be compared with.

Each run records the identity of the encoder that makes its vectors (``encoders.identity``).
Before any work, a run compares its own with those that made the vectors the archive holds; a
different fingerprint (new weights, a retrained projector, another prompt) means queries would
be measured against two kinds of vectors and miss one kind, with no error anywhere. Runs from
before identities were recorded are unknown, and not held against a run.
"""

from __future__ import annotations

import logging

from storage.catalog import Catalog, VectorMaker
from vidsonar.errors import MixedEncodersError

log = logging.getLogger(__name__)


def other_makers(catalog: Catalog, space: str, fingerprint: str) -> list[VectorMaker]:
    """The recorded encoders, other than ``fingerprint``, that made ``space``'s vectors here."""
    return [m for m in catalog.vector_makers(space, count_videos=False)
            if m.fingerprint not in (None, fingerprint)]


def check_vector_makers(catalog: Catalog, space: str, identity, allow_mixed: bool = False) -> None:
    """Raise ``MixedEncodersError`` where other encoders made vectors of ``space`` in this
    archive (``allow_mixed``: log a warning and go on)."""
    others = other_makers(catalog, space, identity.fingerprint)
    if not others:
        return
    held = "; ".join(f"videos of runs {m.first_run}-{m.last_run} by {m.encoder} [{m.fingerprint}]"
                     for m in others)
    made = f"this installation's {space!r} space is {identity.summary} [{identity.fingerprint}]"
    if allow_mixed:
        log.warning("mixing encoders in the %r space, as asked: the archive holds %s; %s", space, held, made)
        return
    raise MixedEncodersError(
        f"the archive's {space!r} vectors were made by another encoder: {held}; {made}. Queries would "
        "be compared with two kinds of vectors and miss one kind. Ingest into another --home, delete "
        "those videos (vidsonar delete), or pass --allow-mixed-encoders to add these anyway")
