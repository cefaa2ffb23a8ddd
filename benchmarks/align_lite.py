"""Does the aligned lite space (EfficientNet-Lite0 -> projector -> e5) beat the label bridge?

Run ``vidsonar --home H align examples/align-lite.yaml`` first. Both spaces embed the same
held-out crops; each unseen caption (as an e5 query) retrieves among them; a hit is a crop of
the captioned photo. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True)
    ap.add_argument("--split", default="val", choices=["val", "heldout"],
                    help="val: unseen crops of trained photos; heldout: photos never trained on "
                         "(prepare with captioned_photos.heldout_photos)")
    args = ap.parse_args()
    from encoders.registry import load_space, scan_dir
    from align.data import load_frames, read_manifest
    from align.trainer import retrieval_r1
    home = Path(args.home)
    scan_dir(home / "spaces")
    val = read_manifest(home / "align" / "data" / "photos224" / f"{args.split}.jsonl")
    items = {p.key: p for p in val}
    frames = [load_frames(p, 1, 224) for p in items.values()]
    groups = [p.group for p in items.values()]
    queries = {(p.caption, p.group): p for p in val}
    out = {"split": args.split, "items": len(items), "queries": len(queries)}
    for name in ("lite", "lite-aligned"):
        space = load_space(name, cache_dir=home / "cache")
        vecs = np.concatenate([space.encode_snippets(f[None]) for f in frames])
        q = space.encode_query([c for c, _ in queries], "eng_Latn")
        r1, chance = retrieval_r1(vecs, groups, q, [g for _, g in queries])
        out[name] = {"r1": round(r1, 3)}
        out["chance"] = round(chance, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
