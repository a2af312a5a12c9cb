"""V-JEPA v1: position table against its formula, checkpoint layouts against an independent forward,
trilinear re-gridding against a hand-written interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from featstore.encoders import create_encoder, get_encoder_entry
from featstore.encoders.vit_video import sincos_table_3d
from data_manifests.errors import FeatstoreError

SMALL = dict(embed_dim=96, depth=2, num_heads=4, img_size=32, num_frames=4)  # grid (2, 2, 2)


def formula_table(grid: tuple[int, int, int], dim: int) -> np.ndarray:
    """encoders.md, literally: each axis gets int(ceil(dim/6)*2) dims of [sin(p*w_k)..., cos(p*w_k)...],
    w_k = 1/10000^(k/(d/2)); rows visit t, then h, then w; the [t, h, w] concatenation is cut to dim."""
    part = int(math.ceil(dim / 6) * 2)

    freqs = [1.0 / 10000 ** (k / (part / 2)) for k in range(part // 2)]
    axis = {p: [math.sin(p * f) for f in freqs] + [math.cos(p * f) for f in freqs] for p in range(max(grid))}

    rows = []
    for t in range(grid[0]):
        for h in range(grid[1]):
            for w in range(grid[2]):
                rows.append((axis[t] + axis[h] + axis[w])[:dim])
    return np.array(rows)


def linear_resize(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Half-pixel linear interpolation along one axis (edge samples clamped), as image resamplers do."""
    n = array.shape[axis]
    out = []
    for i in range(size):
        source = max((i + 0.5) * n / size - 0.5, 0.0)
        low = min(int(math.floor(source)), n - 1)
        high = min(low + 1, n - 1)
        frac = source - low
        out.append((1 - frac) * np.take(array, low, axis=axis) + frac * np.take(array, high, axis=axis))
    return np.stack(out, axis=axis)


def trilinear(table: np.ndarray, source: tuple, target: tuple) -> np.ndarray:
    volume = table.reshape(*source, -1)
    for axis, size in enumerate(target):
        volume = linear_resize(volume, axis, size)
    return volume.reshape(-1, table.shape[-1])


def official_state(randomize, seed: int, dim=96, depth=2, grid=(2, 2, 2), patch=16, tubelet=2, mlp=4) -> dict:
    """A V-JEPA encoder state dict in the official key layout, random values, the sin-cos table as pos_embed."""
    shapes = {"patch_embed.proj.weight": (dim, 3, tubelet, patch, patch), "patch_embed.proj.bias": (dim,),
              "norm.weight": (dim,), "norm.bias": (dim,)}
    for i in range(depth):
        shapes.update({
            f"blocks.{i}.norm1.weight": (dim,), f"blocks.{i}.norm1.bias": (dim,),
            f"blocks.{i}.attn.qkv.weight": (3 * dim, dim), f"blocks.{i}.attn.qkv.bias": (3 * dim,),
            f"blocks.{i}.attn.proj.weight": (dim, dim), f"blocks.{i}.attn.proj.bias": (dim,),
            f"blocks.{i}.norm2.weight": (dim,), f"blocks.{i}.norm2.bias": (dim,),
            f"blocks.{i}.mlp.fc1.weight": (mlp * dim, dim), f"blocks.{i}.mlp.fc1.bias": (mlp * dim,),
            f"blocks.{i}.mlp.fc2.weight": (dim, mlp * dim), f"blocks.{i}.mlp.fc2.bias": (dim,),
        })
    state = randomize({k: torch.zeros(s) for k, s in shapes.items()}, seed)
    state["pos_embed"] = torch.from_numpy(formula_table(grid, dim)).float()[None]
    return state


def clips(size=32, frames=4, n=2) -> torch.Tensor:
    return torch.randn(n, 3, frames, size, size, generator=torch.Generator().manual_seed(11))


@pytest.mark.parametrize("grid,dim", [((8, 14, 14), 1280), ((8, 14, 14), 1024), ((8, 24, 24), 1280), ((2, 3, 4), 64)])
def test_position_table_follows_the_formula(grid, dim):
    # 1280 and 64 are cut (3 x 428 = 1284, 3 x 22 = 66); 1024 is cut too (3 x 342 = 1026).
    np.testing.assert_allclose(sincos_table_3d(grid, dim).numpy(), formula_table(grid, dim), atol=2e-6, rtol=0)


def test_random_init_holds_the_formula_table():
    module, spec = get_encoder_entry("vjepa-h").build(SMALL)  # random init (create_encoder requires weights)
    np.testing.assert_allclose(module.pos_embed[0].numpy(), formula_table((2, 2, 2), 96), atol=2e-6, rtol=0)
    assert not module.pos_embed.requires_grad and spec.pooling == "mean of final-normalized tokens"


def test_official_checkpoint_uses_the_target_encoder(tmp_path, randomize, reference):
    target, context = official_state(randomize, 0), official_state(randomize, 1)
    checkpoint = {
        "encoder": {f"module.backbone.{k}": v for k, v in context.items()},
        "predictor": {"module.backbone.predictor_embed.weight": torch.zeros(4, 96)},
        "target_encoder": {f"module.backbone.{k}": v for k, v in target.items()},
        "opt": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "scaler": None, "epoch": 300, "loss": 0.1, "batch_size": 24, "world_size": 8, "lr": 6e-4,
    }
    torch.save(checkpoint, tmp_path / "vitl16.pth.tar")
    x = clips()
    loaded = create_encoder("vjepa-l", weights=tmp_path / "vitl16.pth.tar", overrides=SMALL)
    assert "target_encoder" in loaded.layout and "module.backbone." in loaded.layout
    expected = reference(target, x, num_heads=4, position_table=target["pos_embed"], pooling="mean")
    with torch.inference_mode():
        out = loaded.module(x).double()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    other = reference(context, x, num_heads=4, position_table=context["pos_embed"], pooling="mean")
    assert (out - other).abs().max() > 1e-2  # the two encoders give different embeddings: the right one was used


@pytest.mark.parametrize("form", ["bare-fp16", "encoder-only"])
def test_other_wrappings(tmp_path, randomize, reference, form):
    state = official_state(randomize, 2)
    if form == "bare-fp16":
        state = {k: v.half() for k, v in state.items()}
        torch.save(state, tmp_path / "w.pth")
    else:
        torch.save({"encoder": {f"module.backbone.{k}": v for k, v in state.items()}, "epoch": 1}, tmp_path / "w.pth")
    x = clips()
    loaded = create_encoder("vjepa-h", weights=tmp_path / "w.pth", overrides=SMALL)
    expected = reference(state, x, num_heads=4, position_table=state["pos_embed"].float(), pooling="mean")
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(x).double(), expected, rtol=1e-4, atol=1e-5)


def test_position_table_of_another_grid_is_interpolated(tmp_path, randomize, reference):
    """A checkpoint made at 64 px (grid 2x4x4, like vith16-384 used at 224) loads into a 32 px model."""
    state = official_state(randomize, 3, grid=(2, 4, 4))
    state["pos_embed"] = torch.randn(1, 32, 96, generator=torch.Generator().manual_seed(4))  # any table
    torch.save({"target_encoder": state}, tmp_path / "w.pth")
    loaded = create_encoder("vjepa-h-384", weights=tmp_path / "w.pth", overrides=SMALL)
    expected_table = trilinear(state["pos_embed"][0].numpy(), (2, 4, 4), (2, 2, 2))
    np.testing.assert_allclose(loaded.module.pos_embed[0].numpy(), expected_table, atol=1e-5, rtol=0)
    x = clips()
    with torch.inference_mode():
        out = loaded.module(x).double()
    table = torch.from_numpy(expected_table)
    torch.testing.assert_close(out, reference(state, x, num_heads=4, position_table=table, pooling="mean"),
                               rtol=1e-4, atol=1e-5)
    # At run time an input of another size gets the table re-gridded the same way (48 px -> 3x3).
    bigger = clips(size=48)
    with torch.inference_mode():
        out = loaded.module(bigger).double()
    table = torch.from_numpy(trilinear(expected_table, (2, 2, 2), (2, 3, 3)))
    torch.testing.assert_close(out, reference(state, bigger, num_heads=4, position_table=table, pooling="mean"),
                               rtol=1e-4, atol=1e-5)


def test_wrong_checkpoints_are_reported(tmp_path, randomize):
    torch.save({"epoch": 3, "opt": {}}, tmp_path / "empty.pth")
    with pytest.raises(FeatstoreError, match="no weights found.*target_encoder"):
        create_encoder("vjepa-l", weights=tmp_path / "empty.pth", overrides=SMALL)
    state = official_state(randomize, 5)
    state.pop("norm.weight")
    torch.save({"target_encoder": state}, tmp_path / "partial.pth")
    with pytest.raises(FeatstoreError, match=r"1 missing keys \(e\.g\. \['norm\.weight'\]\).*accepted layouts.*V-JEPA"):
        create_encoder("vjepa-l", weights=tmp_path / "partial.pth", overrides=SMALL)
