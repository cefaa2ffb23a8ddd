from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from storage.ids import (MAX_SNIPPETS_PER_VIDEO, MAX_VIDEO_ID, pack_snippet_id, unpack_snippet_id,
                         video_id_range)

video_ids = st.integers(1, MAX_VIDEO_ID)
indices = st.integers(0, MAX_SNIPPETS_PER_VIDEO - 1)


@given(video_ids, indices)
def test_pack_round_trips_and_fits_int64(video_id, index):
    sid = pack_snippet_id(video_id, index)
    assert 0 < sid < 2**63
    assert unpack_snippet_id(sid) == (video_id, index)
    lo, hi = video_id_range(video_id)
    assert lo <= sid < hi


@given(video_ids, indices, indices)
def test_ids_order_by_video_then_snippet(video_id, a, b):
    assert (pack_snippet_id(video_id, a) < pack_snippet_id(video_id, b)) == (a < b)
    if video_id < MAX_VIDEO_ID:
        assert pack_snippet_id(video_id, MAX_SNIPPETS_PER_VIDEO - 1) < pack_snippet_id(video_id + 1, 0)


@pytest.mark.parametrize("video_id,index", [(0, 0), (-1, 0), (MAX_VIDEO_ID + 1, 0), (1, -1),
                                            (1, MAX_SNIPPETS_PER_VIDEO)])
def test_out_of_range_is_rejected(video_id, index):
    with pytest.raises(ValueError, match="out of range"):
        pack_snippet_id(video_id, index)
