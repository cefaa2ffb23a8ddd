"""What users and models add to the catalog: tags on videos, summaries of snippets,
and the filters search applies through them (tables from migration 3)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.catalog import Base, Catalog, Video, utcnow
from vidsonar.errors import InputError, NotFoundError


class Tag(Base):
    __tablename__ = "tags"
    video_id: Mapped[int] = mapped_column(sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class Summary(Base):
    __tablename__ = "summaries"
    snippet_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("snippets.id", ondelete="CASCADE"),
                                            primary_key=True)
    lang: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # "decoded" | "labels"
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def _clean_tag(tag: str) -> str:
    tag = (tag or "").strip()
    if not tag or len(tag) > 200:
        raise InputError(f"a tag must be 1 to 200 characters, got {tag!r}")
    return tag


def add_tags(catalog: Catalog, video_id: int, tags: list[str]) -> list[str]:
    with catalog.session() as s:
        if s.get(Video, video_id) is None:
            raise NotFoundError(f"no video with id {video_id}")
        have = set(s.scalars(sa.select(Tag.tag).where(Tag.video_id == video_id)))
        for tag in map(_clean_tag, tags):
            if tag not in have:
                s.add(Tag(video_id=video_id, tag=tag))
                have.add(tag)
        return sorted(have)


def remove_tags(catalog: Catalog, video_id: int, tags: list[str]) -> list[str]:
    with catalog.session() as s:
        s.execute(sa.delete(Tag).where(Tag.video_id == video_id, Tag.tag.in_(tags)))
        return sorted(s.scalars(sa.select(Tag.tag).where(Tag.video_id == video_id)))


def tags_of(catalog: Catalog, video_ids: list[int]) -> dict[int, list[str]]:
    with catalog.session() as s:
        out: dict[int, list[str]] = {}
        for vid, tag in s.execute(sa.select(Tag.video_id, Tag.tag).where(Tag.video_id.in_(video_ids))
                                  .order_by(Tag.tag)):
            out.setdefault(vid, []).append(tag)
        return out


def cached_summary(catalog: Catalog, snippet_id: int, lang: str, model: str) -> Summary | None:
    with catalog.session() as s:
        return s.get(Summary, (snippet_id, lang, model))


def store_summary(catalog: Catalog, snippet_id: int, lang: str, model: str, kind: str, text: str) -> None:
    with catalog.session() as s:
        s.merge(Summary(snippet_id=snippet_id, lang=lang, model=model, kind=kind, text=text))


@dataclass(frozen=True)
class Filters:
    """Which snippets a search may return. Empty fields do not filter."""
    video_ids: tuple[int, ...] = ()
    path_glob: str | None = None  # shell pattern on the video path, e.g. "*/2024/*.mp4"
    min_duration: float | None = None  # of the video, seconds
    max_duration: float | None = None
    ingested_after: dt.datetime | None = None
    ingested_before: dt.datetime | None = None
    tags: tuple[str, ...] = ()  # a video must carry every one

    @property
    def empty(self) -> bool:
        return self == Filters()

    def condition(self):
        """A SQL condition on ``videos`` (joined with ``snippets``)."""
        conds = [Video.status == "ok"]
        if self.video_ids:
            conds.append(Video.id.in_(self.video_ids))
        if self.path_glob:
            conds.append(Video.path.like(_glob_to_like(self.path_glob), escape="\\"))
        if self.min_duration is not None:
            conds.append(Video.duration >= self.min_duration)
        if self.max_duration is not None:
            conds.append(Video.duration <= self.max_duration)
        if self.ingested_after is not None:
            conds.append(Video.ingested_at >= self.ingested_after)
        if self.ingested_before is not None:
            conds.append(Video.ingested_at < self.ingested_before)
        for tag in self.tags:
            conds.append(Video.id.in_(sa.select(Tag.video_id).where(Tag.tag == tag)))
        return sa.and_(*conds)


def _glob_to_like(glob: str) -> str:
    """Shell glob to SQL LIKE (portable across databases): * -> %, ? -> _."""
    out = []
    for ch in glob:
        out.append({"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}.get(ch, ch))
    return "".join(out)


def allowed_videos(catalog: Catalog, filters: Filters) -> np.ndarray:
    """Ids of the videos the filters allow. Every filter is a condition on a video, and a
    snippet id names its video (storage.ids), so this list is what a backend needs to push the
    filter into its search: a FAISS IDSelector over the labels, a Milvus ``video_id in`` expression."""
    with catalog.session() as s:
        ids = s.scalars(sa.select(Video.id).where(filters.condition()).order_by(Video.id))
        return np.fromiter(ids, dtype=np.int64)
