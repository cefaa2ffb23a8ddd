"""Every error a user can meet, in one tree.

    VidsonarError                      base; the CLI prints its message, the API maps it
    ├── InputError                     bad input from the user (HTTP 400/422)
    │   ├── UnknownLanguageError       a language code the space does not know
    │   ├── WeightSourceError          a weight source string we cannot parse
    │   ├── NoDecoderError             decoding asked of a space without a text decoder
    │   ├── MixedEncodersError         an ingest whose encoder is not the one that made the space's vectors
    │   └── MediaError                 a file we cannot ingest
    │       ├── NoVideoStreamError     a container with no video stream
    │       ├── StillImageError        a picture file (JPEG, PNG, one-frame GIF...), not footage
    │       └── DecodeError            unreadable, truncated or empty media
    ├── NotFoundError                  an id, space or file that does not exist (HTTP 404)
    │   └── UnknownSpaceError          a concept space missing from the registry
    ├── IndexError_                    the vector index (HTTP 409/500)
    │   ├── SpaceMismatchError         index built with another concept space or dimension
    │   ├── CorruptIndexError          manifest or index file damaged
    │   ├── IndexUnreachableError      its Milvus server is stopped, hung or unreachable (HTTP 503)
    │   └── IndexRefusedError          its Milvus server refuses vidsonar: token, privileges (HTTP 503)
    ├── CatalogError                   the catalog database: a schema this code cannot migrate
    │   ├── CatalogUnreachableError    its server is stopped, restarting or unreachable (HTTP 503)
    │   └── CatalogRefusedError        its server refuses the connection: user, password (HTTP 503)
    ├── UnreachableError               the base of both ...UnreachableError: wait, nothing is lost
    ├── ReadOnlyArchiveError           a write asked of an archive opened read-only (HTTP 409)
    ├── BusyError                      a video a live run is still ingesting (HTTP 409)
    ├── ClusterError                   the Ray cluster cannot finish a run (a node lost, an encoder that cannot load)
    └── MissingDependencyError         an optional package (extra) is not installed

Messages name the problem and, where possible, what to do about it.
"""

from __future__ import annotations


class VidsonarError(Exception):
    """Base class of the project's errors."""


class InputError(VidsonarError, ValueError):
    """The user gave us something we cannot use."""


class UnknownLanguageError(InputError):
    def __init__(self, code: str, suggestions: list[str], space: str | None = None):
        self.code, self.suggestions, self.space = code, suggestions, space
        where = f" for concept space {space!r}" if space else ""
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        what = f"unknown language {code!r}" if code else "a language code is required"
        super().__init__(f"{what}{where}{hint} "
                         "(use a FLORES-200 code such as eng_Latn or fra_Latn)")


class WeightSourceError(InputError):
    """A weight source such as ``hf-hub:org/name`` or ``local-dir:/path`` is malformed."""


class MixedEncodersError(InputError):
    """An ingest would add vectors of another encoder to a space whose vectors the archive holds."""


class NoDecoderError(InputError):
    pass


class MediaError(InputError):
    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class NoVideoStreamError(MediaError):
    pass


class StillImageError(MediaError):
    """A file that holds one picture: FFmpeg reads it as a one-frame video, which it is not.
    ``advice`` replaces the default one (give it as an image example) where that would not
    work: a picture inside a video container is no image file."""

    def __init__(self, path: str, kind: str, advice: str | None = None):
        self.kind = kind
        super().__init__(path, f"a still image ({kind}), not a video; " + (
            advice or "to search with it, give it as an image example (search --image)"))


class DecodeError(MediaError):
    pass


class NotFoundError(VidsonarError, LookupError):
    pass


class BusyError(VidsonarError):
    """What is asked of a video waits on a run still ingesting it (a delete)."""


class UnknownSpaceError(NotFoundError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"unknown concept space {name!r}; known spaces: {', '.join(known) or 'none'}")


class IndexError_(VidsonarError):
    """Problems with the vector index on disk (named to avoid shadowing the builtin)."""


class SpaceMismatchError(IndexError_):
    pass


class CorruptIndexError(IndexError_):
    pass


class UnreachableError(VidsonarError):
    """A server vidsonar works through (the catalog's database, the index's Milvus) cannot be
    reached for now. Nothing committed is lost: a command run again once it is back carries
    on, and a running server answers 503 meanwhile and carries on by itself (its ingest worker
    and index follower wait it out). ``what`` names the server in words."""

    what = "a server"


class IndexUnreachableError(IndexError_, UnreachableError):
    """The index's Milvus server cannot be reached: stopped, restarting, frozen or off the
    network, or it did not answer within VIDSONAR_MILVUS_TIMEOUT (storage.backends.milvus_outage)."""

    what = "the index server"

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"the index server {url} is unreachable: {reason}; check that the Milvus "
                         "server is running and that this machine can reach it (the address is "
                         "--index or VIDSONAR_INDEX), then try again: nothing the catalog "
                         "committed is lost")


class IndexRefusedError(IndexError_):
    """The index's Milvus server answered, but refused vidsonar: a missing or wrong token, a
    user without the privileges. Retrying will not help until the token or the server's
    settings change."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"the index server {url} refused vidsonar: {reason}; check the token in "
                         "VIDSONAR_MILVUS_TOKEN (user:password, or an API key) and that user's "
                         "privileges on the Milvus server")


class CatalogError(VidsonarError):
    """The catalog's schema is one this code cannot bring up to date (newer, or unknown)."""


class CatalogUnreachableError(CatalogError, UnreachableError):
    """The catalog's database server cannot be reached: stopped, restarting, or off the
    network (storage.outage). Nothing it committed is lost; a server answers 503 meanwhile and
    carries on by itself once it is back."""

    what = "the catalog database"

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"the catalog database {url} is unreachable: {reason}; check that its "
                         "server is running and that this machine can reach it (the address is "
                         "VIDSONAR_DB_URL), then try again: nothing committed before is lost")


class CatalogRefusedError(CatalogError):
    """The catalog's database server answered, but refused this connection: a wrong user or
    password, a database or role that does not exist, no more connections allowed. Retrying
    will not help until its settings (or VIDSONAR_DB_URL) change."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"the catalog database {url} refused the connection: {reason}; check the "
                         "user, password and database name in VIDSONAR_DB_URL (the database must "
                         "exist: `createdb NAME` makes it) and the server's settings")


class ReadOnlyArchiveError(VidsonarError):
    """A command that writes (ingest, delete, tag, reindex) on an archive opened read-only
    (``vidsonar.home``): refused before it does anything, naming the home and why."""

    def __init__(self, where, action: str, reason: str):
        self.where, self.action, self.reason = str(where), action, reason
        super().__init__(f"cannot {action}: the archive at {where} is read-only ({reason}); "
                         "do it on a writable copy of the home, or where this one can be written")


class ClusterError(VidsonarError):
    """The Ray cluster cannot finish an ingest: a node lost mid-run whose work the nodes left
    cannot take up, or an encoder actor that cannot load its space there. What the run wrote
    before is kept; the same command, once the cluster is mended, does the rest."""


class MissingDependencyError(VidsonarError, ImportError):
    """A package is missing: the message names the project's extra that brings it.

    ``extra`` is the ``[project.optional-dependencies]`` group of pyproject.toml
    (``vision``, ``sonar``, ``server``, ...); None for a core dependency, which a plain
    install of vidsonar brings.
    """

    def __init__(self, package: str, purpose: str, extra: str | None = None):
        self.package, self.extra = package, extra
        how = (f"install the project's extra: pip install 'vidsonar[{extra}]'" if extra else
               "it is a core dependency: reinstall vidsonar (pip install vidsonar, or `make venv`)")
        super().__init__(f"{purpose} needs the Python package {package!r}; {how}")
