"""Tell a still image from footage, by what FFmpeg reads rather than by the file's name.

FFmpeg opens a picture as a video of one frame: a JPEG renamed .mp4 (the jpeg_pipe demuxer),
a .png (png_pipe), a .jpg by its name (image2), a GIF of one frame (gif). Ingested, it
became a 0.04 s "video". Pictures come through a picture demuxer, and footage in a picture
codec does not stop being footage: a camera's Motion JPEG .avi goes through the avi demuxer,
and an animated GIF or PNG, or JPEGs written one after another (a raw MJPEG stream), through a
picture demuxer but as many frames. So the rule is a picture demuxer that yields one frame,
told when the file is opened (``still_image_kind``); and, whatever the container, a file whose
video is one picture (one frame decoded, no packet rejected: a JPEG wrapped in an .avi, one
H.264 frame in an .mp4), told when decoding ends (``indexer.decode``): both hold a picture,
not footage.

An animated WebP is footage, but the FFmpeg libraries of PyAV 18 (libavcodec 62.28) read it
as one packet they cannot decode (the ffmpeg 9 program that imageio-ffmpeg ships decodes it):
``animated_webp`` tells it, so that the error names the format rather than "no decodable
video frames"; a PyAV that decodes it ingests it as footage.
"""

from __future__ import annotations

#: FFmpeg's demuxers of picture files besides the image2 family (``image2``, reading a file
#: by its name, and the ``*_pipe`` ones, by its bytes): each reads one picture or a sequence
PICTURE_DEMUXERS = frozenset({"image2", "image2pipe", "gif", "apng", "ico", "jpegxl_anim",
                              "alias_pix", "brender_pix", "mjpeg", "mpjpeg"})

#: codec names that are not what a user calls the file
_KINDS = {"mjpeg": "jpeg", "apng": "png"}


def picture_demuxer(name: str) -> bool:
    """Whether the demuxer ``name`` (``container.format.name``) reads picture files."""
    return name in PICTURE_DEMUXERS or name.endswith("_pipe")


def still_image_kind(container) -> str | None:
    """The picture format ("jpeg", "png", "gif"...) if ``container`` holds one picture, else None.

    Reads the container (the caller opens the file again to decode it). One frame means one
    packet that decodes to one frame: a packet that decodes to several is an animation, one
    that does not decode is left for the decoder to report (FFmpeg reads an animated WebP as
    one packet it cannot decode: calling it a still image would be wrong).
    """
    import av
    if not picture_demuxer(container.format.name):
        return None
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1  # one picture: threads would only be started
    try:
        packets = []
        for packet in container.demux(stream):
            if packet.size:
                packets.append(packet)
                if len(packets) > 1:
                    return None  # a sequence: footage
        frames = sum(len(stream.decode(p)) for p in (*packets, None))
    except av.FFmpegError:
        return None
    if frames != 1:
        return None
    return picture_kind(stream.codec_context.codec.canonical_name)


def picture_kind(codec: str) -> str:
    """What a user calls a picture in ``codec`` (a codec's canonical name): "jpeg" for mjpeg."""
    return _KINDS.get(codec, codec)


def animated_webp(path) -> bool:
    """Whether ``path`` is an animated WebP: a RIFF/WEBP file whose VP8X header sets the
    animation flag."""
    try:
        with open(path, "rb") as f:
            head = f.read(21)
    except OSError:
        return False
    return (len(head) == 21 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X"
            and bool(head[20] & 0x02))
