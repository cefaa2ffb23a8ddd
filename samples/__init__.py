"""Sample media for the demo, the tests and the benchmarks: real freely licensed photos and
video from PyPI packages, turned into clips and multi-scene reels, with their captions in
several languages and ground truth.

- ``samples.footage``: clips, reels, the concert video, the demo's queries and relevance;
- ``samples.captions``: captioned photos and videos (alignment recipes, retrieval sets).
"""
