"""SONAR's text encoder and decoder, through the real ``sonar-space`` pipelines.

The encoder (``TextToEmbeddingModelPipeline``) maps a sentence in any of 200 languages to one
1024-d vector; the decoder (``EmbeddingToTextModelPipeline``) verbalizes a vector in a chosen
language. Each is given by a weight source (see ``encoders.weights``):

    text_sonar_basic_encoder              a fairseq2 asset card (downloads once on first use)
    local-dir:/models/sonar               a directory: *encoder*.pt, *decoder*.pt, *.model
    file:/models/sonar_text_encoder.pt    one checkpoint; the tokenizer is given separately

Local files go through an in-memory asset card whose base is the published card, so the
languages and architecture stay the library's own. A ``sonar.json`` beside local weights may
override the architecture (``{"model_config": {...}}``), which is how tiny test models load.

Weights: SONAR is CC-BY-NC-4.0 (non-commercial).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import warnings
from functools import cache, cached_property
from importlib import util as importlib_util
from pathlib import Path

import numpy as np

from encoders.device import pick_device, pick_dtype
from encoders.weights import WeightSource, find_file, parse_weight_source
from vidsonar.errors import MissingDependencyError, WeightSourceError

log = logging.getLogger(__name__)

ENCODER_CARD = "text_sonar_basic_encoder"
DECODER_CARD = "text_sonar_basic_decoder"
#: tokens the published encoder reads (512 + fairseq's padding offset); longer inputs are chunked
MAX_TOKENS = 514


@cache
def load_libsndfile() -> str:
    """Make libsndfile loadable before fairseq2n's import, which dlopens ``libsndfile.so.1``.

    The ``soundfile`` wheel bundles the library; loading it globally first satisfies fairseq2n
    on machines without the system package. Returns the path it loaded.
    """
    spec = importlib_util.find_spec("soundfile")
    candidates = []
    if spec and spec.origin:
        candidates += sorted((Path(spec.origin).parent / "_soundfile_data").glob("libsndfile*.so*"))
    system = ctypes.util.find_library("sndfile")
    candidates += [Path(system)] if system else []
    for path in candidates:
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return str(path)
        except OSError:
            continue
    raise MissingDependencyError("soundfile", "fairseq2n (SONAR) needs libsndfile "
                                 "(`apt install libsndfile1`, or the soundfile wheel), and", "sonar")


def _import_sonar():
    """fairseq2 and sonar, imported once libsndfile is in place."""
    load_libsndfile()
    try:
        import fairseq2  # noqa: F401
        import sonar  # noqa: F401  registers SONAR's model families and cards
    except ImportError as exc:
        raise MissingDependencyError("sonar-space", "the SONAR text encoder and decoder", "sonar") from exc
    return sonar


@cache
def sonar_languages() -> tuple[str, ...]:
    """The FLORES-200 codes SONAR's tokenizer knows, read from the package's own card."""
    import yaml
    spec = importlib_util.find_spec("sonar")
    if spec is None or not spec.origin:
        from encoders.languages import flores200
        return flores200()
    card = yaml.safe_load((Path(spec.origin).parent / "cards" / f"{ENCODER_CARD}.yaml").read_text())
    return tuple(card["tokenizer_config"]["_set_"]["langs"])


def _store():
    from fairseq2.assets import AssetStore
    from fairseq2.runtime.dependency import get_dependency_resolver
    return get_dependency_resolver().resolve(AssetStore)


def _overrides(directory: Path) -> dict:
    path = directory / "sonar.json"
    return json.loads(path.read_text()).get("model_config", {}) if path.exists() else {}


def model_card(source: str | WeightSource, role: str, model_config: dict | None = None):
    """The fairseq2 asset card (or card name) for SONAR's ``role`` ('encoder' or 'decoder')."""
    from fairseq2.assets import AssetCard
    src = parse_weight_source(source, must_exist=True)
    default = ENCODER_CARD if role == "encoder" else DECODER_CARD
    if src.kind == "name":
        return src.value
    if src.kind == "hf-hub":
        raise WeightSourceError(f"weight source {str(src)!r}: SONAR loads from fairseq2 asset cards "
                                f"(e.g. {default}) or local files (local-dir:, file:), not the HF Hub")
    if src.kind == "local-dir":
        path = find_file(src.path, (f"*{role}*.pt", f"*{role}*.bin"), f"SONAR {role}", str(src))
        overrides = {**_overrides(src.path), **(model_config or {})}
    else:
        path, overrides = src.path, {**_overrides(src.path.parent), **(model_config or {})}
    base = _store().retrieve_card(default)
    meta = {"model_family": base.field("model_family").as_(str), "model_arch": "basic",
            "checkpoint": path.resolve().as_uri()}
    if overrides:
        meta["model_config"] = {"_set_": overrides}
    return AssetCard(f"vidsonar_{role}_{path.stem}", meta, base=base)


def tokenizer_card(source: str | WeightSource):
    """The tokenizer: a card name, a SentencePiece file, or a directory holding one."""
    from fairseq2.assets import AssetCard
    src = parse_weight_source(source, must_exist=True)
    if src.kind == "name":
        return src.value
    if src.kind == "hf-hub":
        raise WeightSourceError(f"tokenizer source {str(src)!r}: use a card name or a local .model file")
    path = find_file(src.path, ("*.model", "*.spm"), "SentencePiece", str(src)) \
        if src.kind == "local-dir" else src.path
    base = _store().retrieve_card(ENCODER_CARD)
    return AssetCard(f"vidsonar_tokenizer_{path.stem}",
                     {"tokenizer": path.resolve().as_uri(), "tokenizer_family": "nllb"}, base=base)


def _default_tokenizer(encoder: str | WeightSource, tokenizer: str | None) -> str | WeightSource:
    if tokenizer:
        return tokenizer
    src = parse_weight_source(encoder)
    if src.kind == "name":
        return src.value
    if src.kind == "local-dir":
        return src
    raise WeightSourceError(f"weight source {str(src)!r} is one checkpoint file: also give the "
                            "tokenizer (text.tokenizer: file:/path/sentencepiece.model)")


class _Base:
    def __init__(self, weights: str, tokenizer: str | None, device: str | None, dtype: str | None):
        _import_sonar()
        self.weights = weights
        self.tokenizer_source = _default_tokenizer(weights, tokenizer)
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)

    @cached_property
    def tokenizer(self):
        from fairseq2.data.tokenizers import load_tokenizer
        return load_tokenizer(tokenizer_card(self.tokenizer_source))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(getattr(self.tokenizer, "_langs", None) or sonar_languages()))

    def check_language(self, lang: str) -> str:
        from encoders.languages import resolve_language
        return resolve_language(lang, self.languages, "sonar")


class SonarTextEncoder(_Base):
    """Sentences -> SONAR vectors (float32, not normalized: SONAR's norms carry meaning)."""

    def __init__(self, weights: str = ENCODER_CARD, tokenizer: str | None = None,
                 device: str | None = "auto", dtype: str | None = "auto", batch_size: int = 64,
                 model_config: dict | None = None):
        super().__init__(weights, tokenizer, device, dtype)
        self.batch_size = batch_size  # the library's default is 5, far below what fits in memory
        self.model_config = model_config

    @cached_property
    def pipeline(self):
        from fairseq2.models import load_model
        from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline
        model = load_model(model_card(self.weights, "encoder", self.model_config),
                           device=self.device, dtype=self.dtype)
        return TextToEmbeddingModelPipeline(model, self.tokenizer, device=self.device, dtype=self.dtype)

    @cached_property
    def dim(self) -> int:
        return int(self.pipeline.predict(["."], source_lang="eng_Latn").shape[1])

    @cached_property
    def max_tokens(self) -> int:
        model = self.pipeline.model
        pos = model.encoder_frontend.pos_encoder
        limit = pos.max_seq_len if pos is not None else None
        return int(limit or MAX_TOKENS)

    def encode(self, texts: list[str], lang: str, progress: bool = False) -> np.ndarray:
        """(n, dim) float32. Texts longer than the model's limit are split into chunks whose
        embeddings are averaged, weighted by length, instead of being silently cut."""
        lang = self.check_language(lang)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        pieces, owner, weight = self._chunk(list(texts), lang)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*was truncated.*")
            emb = self.pipeline.predict(pieces, source_lang=lang, batch_size=self.batch_size,
                                        progress_bar=progress)
        emb = emb.float().cpu().numpy()
        if len(pieces) == len(texts):
            return emb
        out = np.zeros((len(texts), emb.shape[1]), np.float32)
        total = np.zeros(len(texts), np.float32)
        np.add.at(out, owner, emb * weight[:, None])
        np.add.at(total, owner, weight)
        return out / total[:, None]

    def _chunk(self, texts: list[str], lang: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        encoder = self.tokenizer.create_encoder(lang=lang, mode="source")
        budget = self.max_tokens - 2  # the language token and </s> frame each piece
        pieces, owner, weight = [], [], []
        raw = decoder = None
        for i, text in enumerate(texts):
            if len(encoder(text)) <= self.max_tokens:
                pieces.append(text), owner.append(i), weight.append(1.0)
                continue
            raw = raw or self.tokenizer.create_raw_encoder()
            decoder = decoder or self.tokenizer.create_decoder()
            ids = raw(text)
            log.info("SONAR input %d has %d tokens; encoding it in %d-token chunks", i, len(ids), budget)
            for start in range(0, len(ids), budget):
                chunk = ids[start:start + budget]
                pieces.append(str(decoder(chunk))), owner.append(i), weight.append(float(len(chunk)))
        return pieces, np.asarray(owner), np.asarray(weight, np.float32)


class SonarTextDecoder(_Base):
    """SONAR vectors -> sentences in a target language (beam search)."""

    def __init__(self, weights: str = DECODER_CARD, tokenizer: str | None = None,
                 device: str | None = "auto", dtype: str | None = "auto", batch_size: int = 32,
                 model_config: dict | None = None):
        super().__init__(weights, tokenizer, device, dtype)
        self.batch_size = batch_size
        self.model_config = model_config

    @cached_property
    def pipeline(self):
        from fairseq2.models import load_model
        from sonar.inference_pipelines.text import EmbeddingToTextModelPipeline
        model = load_model(model_card(self.weights, "decoder", self.model_config),
                           device=self.device, dtype=self.dtype)
        return EmbeddingToTextModelPipeline(model, self.tokenizer, device=self.device, dtype=self.dtype)

    def decode(self, vectors: np.ndarray, lang: str = "eng_Latn", beam_size: int = 5,
               max_len: int = 128, min_len: int = 1, len_penalty: float = 1.0) -> list[str]:
        import torch
        lang = self.check_language(lang)
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if len(vectors) == 0:
            return []
        x = torch.from_numpy(vectors).to(self.device, self.dtype)
        return self.pipeline.predict(x, target_lang=lang, batch_size=self.batch_size,
                                     beam_size=int(beam_size), max_gen_len=(0, int(max_len)),
                                     min_gen_len=int(min_len), len_penalty=float(len_penalty))
