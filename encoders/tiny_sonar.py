"""Tiny random SONAR models of the real architecture: for tests and the tiny alignment example.

Real SONAR weights are large and licensed apart; these exercise the same loading code
(``local-dir:`` weights, a SentencePiece tokenizer, ``sonar.json`` architecture overrides)
in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

from encoders.sonar import _import_sonar, tokenizer_card
from vidsonar.errors import MissingDependencyError


def make_tiny_sonar(directory: str | Path, sentences: list[str], dim: int = 32, layers: int = 1,
                    heads: int = 2, max_seq_len: int = 64, vocab_size: int = 64, seed: int = 0) -> Path:
    """A random-initialised SONAR encoder and decoder of the real architecture, with a tiny
    SentencePiece model trained on ``sentences``: for tests and the tiny alignment example.

    Writes ``sentencepiece.model``, ``tiny_sonar_encoder.pt``, ``tiny_sonar_decoder.pt`` and
    the architecture overrides in ``sonar.json``; load with ``local-dir:<directory>``.
    """
    import dataclasses
    import io

    import torch
    try:
        import sentencepiece as spm
    except ImportError as exc:
        raise MissingDependencyError("sentencepiece", "training a tiny SONAR tokenizer", "test") from exc
    _import_sonar()
    from fairseq2.data.tokenizers import VocabularyInfo, load_tokenizer
    from sonar.models.sonar_text import get_sonar_text_decoder_hub, get_sonar_text_encoder_hub

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model,
                                   vocab_size=vocab_size, model_type="unigram", hard_vocab_limit=False,
                                   character_coverage=1.0, minloglevel=2)
    (directory / "sentencepiece.model").write_bytes(model.getvalue())
    vocab = load_tokenizer(tokenizer_card(f"file:{directory / 'sentencepiece.model'}")).vocab_info
    vocab_fields = {k: getattr(vocab, k) for k in ("size", "unk_idx", "bos_idx", "eos_idx", "pad_idx")}
    overrides = {"model_dim": dim, "num_encoder_layers": layers, "num_decoder_layers": layers,
                 "num_encoder_attn_heads": heads, "num_decoder_attn_heads": heads,
                 "ffn_inner_dim": dim * 2, "max_seq_len": max_seq_len, "vocab_info": vocab_fields}
    torch.manual_seed(seed)
    for role, hub in (("encoder", get_sonar_text_encoder_hub()), ("decoder", get_sonar_text_decoder_hub())):
        config = dataclasses.replace(hub.get_arch_config("basic"), vocab_info=VocabularyInfo(**vocab_fields),
                                     **{k: v for k, v in overrides.items() if k != "vocab_info"})
        torch.save({"model": hub.create_new_model(config).state_dict()},
                   directory / f"tiny_sonar_{role}.pt")
    (directory / "sonar.json").write_text(json.dumps({"model_config": overrides}, indent=1))
    return directory
