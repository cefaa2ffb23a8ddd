"""Alignment training for the v-Sonar projector (``vidsonar align CONFIG``).

    config.py    the YAML/JSON recipe: space template, curriculum stages, optimizer settings
    data.py      JSONL manifests, loading images and video spans as frames
    captions.py  a small captioned set made from real photos (tests, examples, measurements)
    cache.py     frozen-backbone features and teacher embeddings, cached on disk
    trainer.py   the training loop, validation metrics, best checkpoint, space registration
"""

from align.config import AlignConfig, StageConfig, load_config
from align.trainer import AlignResult, align

__all__ = ["AlignConfig", "StageConfig", "load_config", "align", "AlignResult"]
