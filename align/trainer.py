"""The alignment loop (paper, Section 2 and Appendix D).

Loss: MSE between the projected vision embedding and the frozen teacher's caption embedding
(eq. 1, squared distance summed over dimensions, averaged over the batch), plus an optional
InfoNCE term (Appendix B, eq. 5-6). The backbone is frozen for ``freeze_backbone_steps``
optimizer steps (cached features), then trained jointly at its own, lower learning rate.
AdamW, linear warmup then cosine decay per stage, gradient accumulation, bf16 autocast on GPU,
early stopping on validation MSE, and the best weights kept per stage.
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from align.config import AlignConfig, StageConfig
from align.data import Pair, read_manifest, split

log = logging.getLogger(__name__)


@dataclass
class AlignResult:
    space: str
    projector: Path
    space_config: Path
    stages: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"space": self.space, "projector": str(self.projector),
                "space_config": str(self.space_config), "stages": self.stages}


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at ``total`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def alignment_loss(pred, target, mse_weight: float, nce_weight: float, temperature: float):
    import torch
    import torch.nn.functional as F
    loss = mse_weight * ((pred - target) ** 2).sum(-1).mean()
    if nce_weight:
        logits = F.normalize(pred, dim=-1) @ F.normalize(target, dim=-1).T / temperature
        labels = torch.arange(len(pred), device=pred.device)
        loss = loss + nce_weight * F.cross_entropy(logits, labels)
    return loss


def retrieval_r1(pred: np.ndarray, item_groups: list[str], queries: np.ndarray,
                 query_groups: list[str]) -> tuple[float, float]:
    """Text -> video R@1 (a hit when the top item shows the query's group) and its chance level."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    top = np.argmax(unit(queries) @ unit(pred).T, axis=1)
    hits = [item_groups[t] == g for t, g in zip(top, query_groups)]
    counts = {g: item_groups.count(g) for g in set(query_groups)}
    chance = float(np.mean([counts[g] / len(item_groups) for g in query_groups]))
    return float(np.mean(hits)), chance


class _Trainer:
    def __init__(self, config: AlignConfig, home, progress: bool | None):
        import torch

        from encoders.vision import load_backbone
        from encoders.projector import ProjectorConfig, VSonarProjector
        from encoders.device import pick_device
        from encoders.vsonar import build_teacher
        from align.cache import MediaCache
        self.torch, self.config, self.home = torch, config, home
        self.workdir = Path(config.expand(config.workdir, home.root))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.device = pick_device(config.device)
        self.space = self._space_template()
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.backbone = load_backbone(self.space["vision"], device=str(self.device))
        self.teacher = build_teacher(self.space["text"], str(self.device))
        self.teacher_id = json.dumps(self.space["text"], sort_keys=True)
        self.frames = int(self.space["vision"].get("frames", 8))
        self.cache = MediaCache(home.cache / "align", self.backbone, self.frames)
        dim = self._targets([Pair(Path("."), "probe", "eng_Latn")]).shape[1]
        self.space["dim"] = dim
        pcfg = ProjectorConfig(in_dim=self.backbone.feature_dim, out_dim=dim, **config.projector)
        self.projector = VSonarProjector(pcfg).to(self.device)
        self.step = 0
        self.joint = False
        self.target_norms: list[float] = []

    # --- setup ---------------------------------------------------------------------------
    def _space_template(self) -> dict:
        from encoders.registry import get_space_config
        raw = self.config.space
        if isinstance(raw, str):
            cfg = get_space_config(raw)
            raw = {"family": cfg.family, "languages": cfg.languages, "text": cfg.text,
                   "vision": cfg.vision, "options": cfg.options, "description": cfg.description}
        space = json.loads(json.dumps(raw))

        def expand(node):
            if isinstance(node, dict):
                return {k: expand(v) for k, v in node.items()}
            return self.config.expand(node, self.home.root) if isinstance(node, str) else node
        space = expand(space)
        space.setdefault("family", "v-sonar")
        space.setdefault("text", {"type": "sonar"})
        space.setdefault("vision", {})
        space.setdefault("options", {})
        space["languages"] = space.get("languages") or ("e5" if space["text"].get("type") == "e5" else "flores200")
        return space

    def _targets(self, pairs: list[Pair], query: bool = False) -> np.ndarray:
        from align.cache import teacher_targets
        return teacher_targets(self.home.cache / "align", self.teacher, self.teacher_id, pairs, query)

    def _bar(self, total: int, desc: str):
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit="it", file=sys.stderr, disable=not self.progress, leave=False)

    def _tensors(self, pairs: list[Pair], desc: str):
        from encoders.projector import pad_frames
        torch = self.torch
        with self._bar(len({p.key for p in pairs}), f"features {desc}") as bar:
            feats = self.cache.features(pairs, bar)
        x, mask = pad_frames([torch.from_numpy(feats[p.key]) for p in pairs], self.frames)
        return x, mask

    # --- stages --------------------------------------------------------------------------
    def run_stage(self, stage: StageConfig) -> dict:
        torch, cfg = self.torch, self.config
        pairs = read_manifest(cfg.expand(stage.manifest, self.home.root))
        if stage.val_manifest:
            train, val = pairs, read_manifest(cfg.expand(stage.val_manifest, self.home.root))[: stage.max_val]
        else:
            train, val = split(pairs, stage.val_fraction, cfg.seed, stage.max_val)
        if not train or not val:
            raise ValueError(f"stage {stage.name!r} needs both training and validation pairs")
        x_tr, m_tr = self._tensors(train, f"{stage.name}/train")
        x_va, m_va = self._tensors(val, f"{stage.name}/val")
        y_tr = torch.from_numpy(self._targets(train))
        y_va = torch.from_numpy(self._targets(val))
        self.target_norms.append(float(y_tr.norm(dim=1).mean()))
        val_queries = self._targets(val, query=True)
        started = time.perf_counter()

        steps_per_epoch = max(1, math.ceil(len(train) / stage.batch_size / stage.accumulate))
        total = steps_per_epoch * stage.epochs
        backbone_params = [p for p in self.backbone.module.parameters()]
        groups = [{"params": list(self.projector.parameters()), "lr": stage.lr, "base": stage.lr}]
        if backbone_params and stage.backbone_lr > 0:
            groups.append({"params": backbone_params, "lr": stage.backbone_lr, "base": stage.backbone_lr})
        optim = torch.optim.AdamW(groups, weight_decay=stage.weight_decay)
        scaler_ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) \
            if (cfg.bf16 and self.device.type == "cuda") else (lambda: torch.autocast("cpu", enabled=False))

        metrics = self.evaluate(x_va, m_va, y_va, val, val_queries)
        report = {"train_pairs": len(train), "val_pairs": len(val), "val_mse_init": metrics["mse"],
                  "val_cos_init": metrics["cos"], "val_r1_init": metrics["r1"], "val_r1_chance": metrics["chance"]}
        # the stage's starting weights are a candidate: a stage that only makes the model worse
        # ends where it began (epoch 0), not at its least bad epoch
        best = dict(metrics, epoch=0)
        best_state = self._state(with_backbone=len(groups) > 1)
        bad_epochs = 0
        stage_step = 0
        seen = 0
        bar = self._bar(total, stage.name)
        for epoch in range(stage.epochs):
            self._set_joint(self.step >= cfg.freeze_backbone_steps and len(groups) > 1)
            order = torch.randperm(len(train))
            self.projector.train()
            optim.zero_grad(set_to_none=True)
            batches = [order[i:i + stage.batch_size] for i in range(0, len(train), stage.batch_size)]
            for b, idx in enumerate(batches):
                with scaler_ctx():
                    feats = self._batch_features(train, idx, x_tr)
                    pred = self.projector(feats, m_tr[idx].to(self.device))
                    loss = alignment_loss(pred.float(), y_tr[idx].to(self.device), cfg.mse_weight,
                                          cfg.infonce_weight, cfg.infonce_temperature)
                (loss / stage.accumulate).backward()
                seen += len(idx)
                if (b + 1) % stage.accumulate and b + 1 != len(batches):
                    continue
                factor = lr_factor(stage_step, stage.warmup_steps, total)
                for g in optim.param_groups:
                    g["lr"] = g["base"] * factor
                torch.nn.utils.clip_grad_norm_(self.projector.parameters(), 10.0)
                optim.step()
                optim.zero_grad(set_to_none=True)
                stage_step += 1
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4g}")
                if not self.joint and self.step >= cfg.freeze_backbone_steps and len(groups) > 1:
                    self._set_joint(True)
            metrics = self.evaluate(x_va, m_va, y_va, val, val_queries)
            log.info("stage %s epoch %d: val mse %.5f cos %.3f R@1 %.3f", stage.name, epoch + 1,
                     metrics["mse"], metrics["cos"], metrics["r1"])
            if metrics["mse"] < best["mse"] - 1e-9:
                best, bad_epochs = dict(metrics, epoch=epoch + 1), 0
                best_state = self._state(with_backbone=len(groups) > 1)
                self._save_best(best_state, stage, best)
            else:
                bad_epochs += 1
                if bad_epochs >= stage.patience:
                    log.info("stage %s: early stop after %d epochs", stage.name, epoch + 1)
                    break
        bar.close()
        self._load_state(best_state)
        seconds = time.perf_counter() - started
        report.update({"val_mse_best": best["mse"], "val_cos_best": best["cos"], "val_r1": best["r1"],
                       "best_epoch": best.get("epoch"), "epochs": epoch + 1, "steps": stage_step,
                       "seconds": round(seconds, 2), "pairs_per_s": round(seen / max(seconds, 1e-9), 1),
                       "joint": self.joint})
        return report

    def _set_joint(self, joint: bool) -> None:
        self.joint = joint
        for p in self.backbone.module.parameters():
            p.requires_grad_(joint)
        self.backbone.module.train(joint)

    def _batch_features(self, pairs: list[Pair], idx, cached):
        """Cached frozen features, or (joint phase) the backbone run on the frames with gradients."""
        if not self.joint:
            return cached[idx].to(self.device)
        torch = self.torch
        crops = [self.cache.crops(pairs[i])[: self.frames] for i in idx.tolist()]
        flat = self.backbone.forward(self.backbone.to_tensor(np.concatenate(crops))).float()
        padded = torch.zeros(len(crops), self.frames, flat.shape[-1], device=self.device)
        at = 0
        for j, c in enumerate(crops):
            padded[j, :len(c)] = flat[at:at + len(c)]
            at += len(c)
        return padded

    def evaluate(self, x, mask, y, val: list[Pair], queries: np.ndarray) -> dict:
        torch = self.torch
        self.projector.eval()
        if self.joint:  # features change with the backbone: recompute them
            self.backbone.module.eval()
            with torch.inference_mode():
                x = torch.cat([self._batch_features(val, torch.arange(i, min(i + 64, len(val))), x).cpu()
                               for i in range(0, len(val), 64)])
            self.backbone.module.train()
        with torch.inference_mode():
            pred = torch.cat([self.projector(x[i:i + 256].to(self.device), mask[i:i + 256].to(self.device)).float().cpu()
                              for i in range(0, len(x), 256)])
        mse = float(((pred - y) ** 2).sum(-1).mean())
        cos = float(torch.nn.functional.cosine_similarity(pred, y, dim=-1).mean())
        items: dict[str, int] = {}
        for i, p in enumerate(val):
            items.setdefault(p.key, i)
        rows = list(items.values())
        qkeys: dict[tuple, int] = {}
        for i, p in enumerate(val):
            qkeys.setdefault((p.caption, p.lang, p.group_id), i)
        qrows = list(qkeys.values())
        r1, chance = retrieval_r1(pred.numpy()[rows], [val[i].group_id for i in rows],
                                  queries[qrows], [val[i].group_id for i in qrows])
        return {"mse": mse, "cos": cos, "r1": r1, "chance": chance}

    def _state(self, with_backbone: bool = False) -> dict:
        """A copy of the weights; the backbone's too where the stage trains it (or already does)."""
        state = {"projector": {k: v.detach().clone() for k, v in self.projector.state_dict().items()}}
        if with_backbone or self.joint:
            state["backbone"] = {k: v.detach().clone() for k, v in self.backbone.module.state_dict().items()}
        return state

    def _load_state(self, state: dict) -> None:
        self.projector.load_state_dict(state["projector"])
        if "backbone" in state:
            self.backbone.module.load_state_dict(state["backbone"])

    def _save_best(self, state: dict, stage: StageConfig, metrics: dict) -> None:
        self.torch.save({"state": state, "stage": stage.name, "metrics": metrics, "step": self.step},
                        self.workdir / "best.pt")

    # --- result --------------------------------------------------------------------------
    def finish(self, stages: dict[str, dict]) -> AlignResult:
        from dataclasses import asdict

        from encoders.registry import add_space_config
        cfg = self.config
        space = dict(self.space, name=cfg.name)
        if any(r.get("joint") for r in stages.values()):
            path = self.workdir / "backbone.pt"
            self.torch.save(self.backbone.module.state_dict(), path)
            space["vision"] = dict(space["vision"], finetuned=str(path))
        extra = {"target_norm": self.target_norms[-1] if self.target_norms else 1.0,
                 "align_config": {**asdict(cfg), "stages": [asdict(s) for s in cfg.stages]},
                 "space": space, "git_revision": git_revision(), "metrics": stages, "steps": self.step}
        projector_path = self.projector.save(self.workdir / "projector.pt", **extra)
        space["options"] = dict(space.get("options", {}), projector=str(projector_path))
        space.setdefault("description", f"v-Sonar projector trained by `vidsonar align` ({cfg.source or 'config'})")
        spaces_dir = self.home.root / "spaces"
        spaces_dir.mkdir(parents=True, exist_ok=True)
        config_path = spaces_dir / f"{cfg.name}.json"
        config_path.write_text(json.dumps(space, indent=2, ensure_ascii=False), encoding="utf-8")
        add_space_config(config_path)
        return AlignResult(cfg.name, projector_path, config_path, stages)


def prepare(config: AlignConfig, home) -> None:
    """Generate what ``prepare`` asks for: the captioned photo set, a tiny SONAR."""
    spec = config.prepare or {}
    if "captioned_photos" in spec:
        from samples.captions import make_captioned_photos
        opts = dict(spec["captioned_photos"])
        folder = Path(config.expand(opts.pop("dir"), home.root))
        if not (folder / "train.jsonl").exists() or (opts.get("videos") and not (folder / "video-train.jsonl").exists()):
            make_captioned_photos(folder, **opts)
    if "tiny_sonar" in spec:
        from encoders.tiny_sonar import make_tiny_sonar
        from samples.captions import all_captions
        opts = dict(spec["tiny_sonar"])
        folder = Path(config.expand(opts.pop("dir"), home.root))
        if not (folder / "sonar.json").exists():
            make_tiny_sonar(folder, all_captions(), **opts)


def align(config: AlignConfig, home=None, progress: bool | None = None) -> AlignResult:
    """Train the projector through every stage, then register the space it makes."""
    from vidsonar.home import Home
    home = home if isinstance(home, Home) else Home.resolve(home)
    prepare(config, home)
    trainer = _Trainer(config, home, progress)
    stages = {}
    for stage in config.stages:
        stages[stage.name] = trainer.run_stage(stage)
    return trainer.finish(stages)
