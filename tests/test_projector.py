"""The v-Sonar projector of Appendix D: shapes, masks, pooling variants, init, persistence."""

from __future__ import annotations

import pytest
import torch

from encoders.projector import POOLINGS, ProjectorConfig, VSonarProjector, pad_frames, sinusoidal_positions


def make(pooling="attention", **kw) -> VSonarProjector:
    torch.manual_seed(0)
    return VSonarProjector(ProjectorConfig(in_dim=32, out_dim=16, pooling=pooling, **kw)).eval()


@pytest.mark.parametrize("pooling", POOLINGS)
def test_shapes_for_videos_and_images(pooling):
    model = make(pooling, normal_init=False)
    assert model(torch.randn(3, 8, 32)).shape == (3, 16)
    assert model(torch.randn(3, 32)).shape == (3, 16)  # images: one frame each


@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_does_not_leak(pooling):
    """A 3-frame snippet padded to 8 frames gives the same vector whatever the padding holds."""
    model = make(pooling, normal_init=False)
    x = torch.randn(1, 8, 32)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, :3] = True
    y = x.clone()
    y[0, 3:] = torch.randn(5, 32) * 100
    with torch.no_grad():
        assert torch.allclose(model(x, mask), model(y, mask), atol=1e-5)
        # and equals the unpadded snippet
        assert torch.allclose(model(x, mask), model(x[:, :3]), atol=1e-5)


def test_temporal_order_matters_with_positions():
    model = make("attention", normal_init=False)
    x = torch.randn(1, 6, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-4)


def test_normal_init_starts_near_origin():
    model = make()
    assert model.out.weight.std().item() < 1e-4
    assert torch.count_nonzero(model.out.bias) == 0
    with torch.no_grad():
        assert model(torch.randn(4, 8, 32)).abs().max() < 1e-2
    plain = make(normal_init=False)
    assert plain.out.weight.std().item() > 1e-2


def test_architecture_follows_appendix_d():
    model = VSonarProjector(ProjectorConfig(in_dim=64, out_dim=24))
    assert model.temporal.num_heads == 8 and model.temporal.dropout == pytest.approx(0.1)
    assert model.pool.num_heads == 8 and model.cls.shape == (1, 1, 64)
    assert model.out.in_features == 64 and model.out.out_features == 24


def test_sinusoidal_positions():
    table = sinusoidal_positions(8, 32)
    assert table.shape == (8, 32)
    assert torch.allclose(table[0, 0::2], torch.zeros(16)) and torch.allclose(table[0, 1::2], torch.ones(16))


def test_all_padding_is_refused():
    with pytest.raises(ValueError, match="at least one real frame"):
        make()(torch.randn(1, 4, 32), torch.zeros(1, 4, dtype=torch.bool))


def test_config_validation():
    with pytest.raises(ValueError, match="pooling"):
        ProjectorConfig(in_dim=32, out_dim=8, pooling="median")
    with pytest.raises(ValueError, match="divisible"):
        ProjectorConfig(in_dim=30, out_dim=8)


def test_save_load_round_trip(tmp_path):
    model = make("max", normal_init=False)
    path = model.save(tmp_path / "p.pt", target_norm=0.25, space="x")
    loaded, extra = VSonarProjector.load(path)
    assert extra == {"target_norm": 0.25, "space": "x"}
    assert loaded.config == model.config
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))


def test_pad_frames():
    feats, mask = pad_frames([torch.ones(2, 4), torch.ones(5, 4)], frames=4)
    assert feats.shape == (2, 4, 4) and mask.sum(1).tolist() == [2, 4]
