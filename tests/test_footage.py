"""Generated sample footage is the same every time it is made: benchmarks and the demo build
it afresh, and footage that changed between runs would move every figure measured on it."""

from __future__ import annotations

import hashlib

from samples.captions import photo
from samples.footage import pan_frames, write_video


def test_the_same_frames_always_encode_to_the_same_file(tmp_path):
    # the photo whose pan x264's macroblock-tree rate control encoded differently 5 times in 8
    frames = pan_frames(photo("chelsea"), 4.0, 12, (320, 240))
    digests = {hashlib.sha256(write_video(tmp_path / f"c{i}.mp4", frames, 12).read_bytes()).hexdigest()
               for i in range(4)}
    assert len(digests) == 1
