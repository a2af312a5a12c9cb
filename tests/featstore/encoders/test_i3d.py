"""I3D: both checkpoint layouts against a functional forward written here from the architecture description.

The reference pads with TensorFlow's SAME rule in its textbook form (out = ceil(n / s), pad = (out - 1) * s
+ k - n, front half floor), runs F.conv3d / F.batch_norm / F.max_pool3d on the pytorch-i3d keys, and pools
the final map as the official head does: every 2 x 7 x 7 window (stride 1, no padding) averaged, then the
windows averaged.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from featstore.encoders import create_encoder, get_encoder_entry
from featstore.encoders.i3d import ClipTooSmallForI3D
from data_manifests.errors import FeatstoreError

SMALL = dict(num_frames=9, img_size=193)  # the smallest clip the official head pools: a 2 x 7 x 7 final map


def tf_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads = []
    for n, k, s in zip(x.shape[2:], kernel, stride):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return F.pad(x, [p for pair in reversed(pads) for p in pair])


def reference_i3d(state: dict, clips: torch.Tensor, eps: float) -> torch.Tensor:
    s = state  # float32: torch's float64 3-D convolution has no fast CPU kernel

    def unit(x, name, stride=(1, 1, 1)):
        weight = s[f"{name}.conv3d.weight"]
        x = F.conv3d(tf_same(x, weight.shape[2:], stride), weight, stride=stride)
        x = F.batch_norm(x, s[f"{name}.bn.running_mean"], s[f"{name}.bn.running_var"], s[f"{name}.bn.weight"],
                         s[f"{name}.bn.bias"], training=False, eps=eps)
        return F.relu(x)

    def pool(x, kernel, stride):
        return F.max_pool3d(tf_same(x, kernel, stride), kernel, stride)

    def inception(x, name):
        branches = [unit(x, f"{name}.b0"), unit(unit(x, f"{name}.b1a"), f"{name}.b1b"),
                    unit(unit(x, f"{name}.b2a"), f"{name}.b2b"), unit(pool(x, (3, 3, 3), (1, 1, 1)), f"{name}.b3b")]
        return torch.cat(branches, dim=1)

    x = unit(clips, "Conv3d_1a_7x7", stride=(2, 2, 2))
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = unit(unit(x, "Conv3d_2b_1x1"), "Conv3d_2c_3x3")
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = inception(inception(x, "Mixed_3b"), "Mixed_3c")
    x = pool(x, (3, 3, 3), (2, 2, 2))
    for name in ("4b", "4c", "4d", "4e", "4f"):
        x = inception(x, f"Mixed_{name}")
    x = pool(x, (2, 2, 2), (2, 2, 2))
    x = inception(inception(x, "Mixed_5b"), "Mixed_5c")
    return official_head(x)


def official_head(x: torch.Tensor) -> torch.Tensor:
    """pytorch-i3d's AvgPool3d((2, 7, 7), stride 1) over the final map, then the mean over its output positions."""
    t, h, w = x.shape[2:]
    windows = [x[:, :, i : i + 2, j : j + 7, k : k + 7].mean(dim=(2, 3, 4))
               for i in range(t - 1) for j in range(h - 6) for k in range(w - 6)]
    return torch.stack(windows).mean(dim=0)


# pytorch-i3d's InceptionI3d: (block, input channels, [b0, b1a, b1b, b2a, b2b, b3b] widths)
WIDTHS = (
    ("3b", 192, (64, 96, 128, 16, 32, 32)), ("3c", 256, (128, 128, 192, 32, 96, 64)),
    ("4b", 480, (192, 96, 208, 16, 48, 64)), ("4c", 512, (160, 112, 224, 24, 64, 64)),
    ("4d", 512, (128, 128, 256, 24, 64, 64)), ("4e", 512, (112, 144, 288, 32, 64, 64)),
    ("4f", 528, (256, 160, 320, 32, 128, 128)), ("5b", 832, (256, 160, 320, 32, 128, 128)),
    ("5c", 832, (384, 192, 384, 48, 128, 128)),
)


def unit_shapes(name: str, cin: int, cout: int, k: int) -> dict:
    shapes = {f"{name}.conv3d.weight": (cout, cin, k, k, k), f"{name}.bn.num_batches_tracked": ()}
    shapes.update({f"{name}.bn.{p}": (cout,) for p in ("weight", "bias", "running_mean", "running_var")})
    return shapes


def pytorch_i3d_state(randomize, seed: int) -> dict:
    """A random state dict with pytorch-i3d InceptionI3d's key names and shapes, logits included."""
    shapes = {**unit_shapes("Conv3d_1a_7x7", 3, 64, 7), **unit_shapes("Conv3d_2b_1x1", 64, 64, 1),
              **unit_shapes("Conv3d_2c_3x3", 64, 192, 3)}
    for block, cin, (b0, b1a, b1b, b2a, b2b, b3b) in WIDTHS:
        name = f"Mixed_{block}"
        for unit, i, o, k in (("b0", cin, b0, 1), ("b1a", cin, b1a, 1), ("b1b", b1a, b1b, 3),
                              ("b2a", cin, b2a, 1), ("b2b", b2a, b2b, 3), ("b3b", cin, b3b, 1)):
            shapes.update(unit_shapes(f"{name}.{unit}", i, o, k))
    state = randomize({k: torch.zeros(s, dtype=torch.long if not s else torch.float32) for k, s in shapes.items()},
                      seed)
    # Convolutions 10x below He scale with matching running variances (~0.01) keep activations O(1) through
    # all 57 layers and make BatchNorm's eps visible in the numbers (1e-3 vs 1e-5 must matter).
    generator = torch.Generator().manual_seed(seed)
    for key in list(state):
        if key.endswith("conv3d.weight"):
            fan_in = state[key][0].numel()
            state[key] = 0.1 * (2 / fan_in) ** 0.5 * torch.randn(state[key].shape, generator=generator)
        elif key.endswith("running_var"):
            state[key] = 0.01 + 0.01 * torch.rand(state[key].shape, generator=generator)
        elif key.endswith("running_mean"):
            state[key] = 0.01 * torch.randn(state[key].shape, generator=generator)
    state["logits.conv3d.weight"] = torch.randn(400, 1024, 1, 1, 1)
    state["logits.conv3d.bias"] = torch.randn(400)
    return state


def video_features_names(state: dict) -> dict:
    """The v-iashin/video_features port's names for the same tensors (no num_batches_tracked, old files)."""
    branch = {"b0": "branch_0", "b1a": "branch_1.0", "b1b": "branch_1.1", "b2a": "branch_2.0", "b2b": "branch_2.1",
              "b3b": "branch_3.1"}
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        key = key.replace(".bn.", ".batch3d.").replace("logits.", "conv3d_0c_1x1.")
        key = re.sub(r"^Conv3d_", "conv3d_", key)
        match = re.match(r"^Mixed_(\w\w)\.(\w+)\.(.*)$", key)
        if match:
            key = f"mixed_{match.group(1)}.{branch[match.group(2)]}.{match.group(3)}"
        out[key] = value
    return out


def clips(frames=9, size=193) -> torch.Tensor:
    return torch.rand(1, 3, frames, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1


def test_pytorch_i3d_layout(tmp_path, randomize):
    state = pytorch_i3d_state(randomize, 0)
    without_counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(without_counters, tmp_path / "rgb_imagenet.pt")  # saved before PyTorch 0.4.1: no BN counters
    loaded = create_encoder("i3d", weights=tmp_path / "rgb_imagenet.pt", overrides=SMALL)
    assert loaded.layout.startswith("pytorch-i3d")
    x = clips()
    expected = reference_i3d(state, x, eps=1e-3)
    with torch.inference_mode():
        out = loaded.module(x)
    assert out.shape == (1, 1024)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)  # 9 and 193 take asymmetric SAME padding


def test_video_features_layout_brings_its_batchnorm_eps(tmp_path, randomize):
    state = pytorch_i3d_state(randomize, 1)
    torch.save({"module." + k: v for k, v in video_features_names(state).items()}, tmp_path / "i3d_rgb.pt")
    loaded = create_encoder("i3d", weights=tmp_path / "i3d_rgb.pt", overrides=SMALL)
    assert loaded.layout.startswith("video_features")
    x = clips()
    with torch.inference_mode():
        out = loaded.module(x)
    torch.testing.assert_close(out, reference_i3d(state, x, eps=1e-5), rtol=1e-4, atol=1e-5)
    with_tf_eps = reference_i3d(state, x, eps=1e-3)
    assert (out - with_tf_eps).abs().max() > 1e-3  # the eps is visible at this scale
    # An explicit override wins over what the layout implies.
    forced = create_encoder("i3d", weights=tmp_path / "i3d_rgb.pt", overrides={**SMALL, "bn_eps": 1e-3})
    with torch.inference_mode():
        torch.testing.assert_close(forced.module(x), with_tf_eps, rtol=1e-4, atol=1e-5)


def test_spec_and_wrong_files(tmp_path, randomize):
    spec = get_encoder_entry("i3d").spec
    assert (spec.embed_dim, spec.num_frames, spec.resolution, spec.resize_short) == (1024, 16, 224, 256)
    # mean/std 0.5 turn uint8 x into 2 * x / 255 - 1, the [-1, 1] input the network was trained on
    x = torch.tensor([0.0, 127.5, 255.0]) / 255
    assert torch.allclose((x - spec.mean[0]) / spec.std[0], torch.tensor([-1.0, 0.0, 1.0]))
    state = pytorch_i3d_state(randomize, 2)
    del state["Mixed_4c.b2b.conv3d.weight"]
    torch.save({"state_dict": state}, tmp_path / "partial.pt")
    with pytest.raises(FeatstoreError, match=r"1 missing keys \(e\.g\. \['Mixed_4c\.b2b\.conv3d\.weight'\]\)"):
        create_encoder("i3d", weights=tmp_path / "partial.pt", overrides=SMALL)


def test_head_pools_longer_and_larger_clips_as_the_official_model(randomize):
    """17 frames at 225 px leave a 3 x 8 x 8 final map: the official pool's overlapping 2 x 7 x 7 windows weigh its
    borders less, which a plain mean over (t, h, w) does not (24-frame 224 px clips differed by ~0.15)."""
    state = {k: v for k, v in pytorch_i3d_state(randomize, 3).items() if not k.startswith("logits.")}
    module, spec = get_encoder_entry("i3d").build({"num_frames": 17, "img_size": 225})
    module.load_state_dict(state)
    module.eval()
    final_maps = []
    module.Mixed_5c.register_forward_hook(lambda _module, _inputs, output: final_maps.append(output))
    with torch.inference_mode():
        out = module(clips(frames=17, size=225))
    (final_map,) = final_maps
    assert final_map.shape[2:] == (3, 8, 8) and spec.num_frames == 17
    torch.testing.assert_close(out, official_head(final_map))
    assert (out - final_map.mean(dim=(2, 3, 4))).abs().max() > 1e-2


def test_clips_the_official_head_cannot_pool_are_refused():
    build = get_encoder_entry("i3d").build
    with pytest.raises(ClipTooSmallForI3D, match=r"^i3d: 8-frame 224px clips leave a 1x7x7 Mixed_5c map, smaller "
                                                  r"than the official AvgPool3d\(\(2, 7, 7\)\) head; it needs at "
                                                  r"least 9 frames and 193 px$"):
        build({"num_frames": 8})
    with pytest.raises(ClipTooSmallForI3D, match="leave a 2x6x6 Mixed_5c map"):
        build({"img_size": 192})
    module, _ = build(SMALL)
    with pytest.raises(ClipTooSmallForI3D, match="8-frame 193px"):  # a clip shorter than the configured one
        module(clips(frames=8))
