"""PNG figures of a retrieval run (matplotlib, Agg): R@k by system, per-language bars, and a
2-D projection of paired embeddings in the manner of the paper's Figure 11.

The projection is PCA of the pooled video and caption vectors (deterministic, no extra
dependency; the paper uses t-SNE), with lines joining each video to its caption: short lines
mean a small modality gap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def recall_by_system(table: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    """``table``: system -> {"R@1": x, "R@5": y, "R@10": z} (fractions); grouped bars in %."""
    plt = _plt()
    ks = ["R@1", "R@5", "R@10"]
    systems = list(table)
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, system in enumerate(systems):
        xs = np.arange(len(ks)) + i * width
        ax.bar(xs, [100 * table[system].get(k, np.nan) for k in ks], width, label=system)
    ax.set_xticks(np.arange(len(ks)) + width * (len(systems) - 1) / 2, ks)
    ax.set_ylabel("text -> video recall (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def per_language(table: dict[str, dict[str, float]], path: Path, title: str, metric: str = "R@1") -> Path:
    """``table``: system -> {language: value}; bars per language, one colour per system."""
    plt = _plt()
    systems = list(table)
    langs = list(dict.fromkeys(lang for row in table.values() for lang in row))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(langs)), 3.5))
    for i, system in enumerate(systems):
        xs = np.arange(len(langs)) + i * width
        ax.bar(xs, [100 * table[system].get(lang, np.nan) for lang in langs], width, label=system)
    ax.set_xticks(np.arange(len(langs)) + width * (len(systems) - 1) / 2, langs, rotation=30, fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def pca_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T if len(vt) >= 2 else np.c_[x @ vt[:1].T, np.zeros(len(x))]


def paired_projection(pairs: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str,
                      lines: int = 50) -> Path:
    """``pairs``: system -> (vision (n, d), text (n, d)), row i of each one item."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(pairs), figsize=(4 * len(pairs), 4), squeeze=False)
    for ax, (system, (v, t)) in zip(axes[0], pairs.items()):
        xy = pca_2d(np.concatenate([v, t]))
        pv, pt = xy[:len(v)], xy[len(v):]
        for i in range(min(lines, len(v))):
            ax.plot([pv[i, 0], pt[i, 0]], [pv[i, 1], pt[i, 1]], color="grey", lw=0.5, alpha=0.6)
        ax.scatter(pv[:, 0], pv[:, 1], s=14, label="video")
        ax.scatter(pt[:, 0], pt[:, 1], s=14, marker="^", label="caption")
        ax.set_title(system, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path
