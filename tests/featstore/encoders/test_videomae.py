"""VideoMAE v1/v2 and InternVideo (VideoMAE format): every accepted key layout, checked against transformers.

A small random VideoMAE is built with Hugging Face transformers (the independent reference), its weights are
written in each layout users have (HF new/old names, official fine-tune and pretrain, wrappers, fp16), loaded
through ``create_encoder`` and compared with the HF forward. The official-layout dicts are themselves checked
against the plain-ops reference of conftest.py, so a naming mistake cannot cancel out in a round trip.
"""

from __future__ import annotations

import argparse
import re

import pytest
import torch
from safetensors.torch import save_file

from featstore.encoders import create_encoder
from featstore.encoders.vit_video import sinusoid_table_1d
from data_manifests.errors import FeatstoreError

transformers = pytest.importorskip("transformers", reason="transformers (test-only dependency) is not installed")

SMALL = dict(embed_dim=64, depth=2, num_heads=4, img_size=32, num_frames=4)
SMALL_G = dict(embed_dim=176, depth=2, num_heads=2, img_size=28, num_frames=4)  # ViT-g shape: patch 14, head 88


def hf_config(overrides: dict, patch_size: int = 16, mlp_ratio: float = 4.0, **extra):
    return transformers.VideoMAEConfig(
        hidden_size=overrides["embed_dim"], num_hidden_layers=overrides["depth"],
        num_attention_heads=overrides["num_heads"], intermediate_size=int(overrides["embed_dim"] * mlp_ratio),
        image_size=overrides["img_size"], num_frames=overrides["num_frames"], patch_size=patch_size, tubelet_size=2,
        layer_norm_eps=1e-6, hidden_act="gelu", qv_bias=True, num_labels=5, **extra,
    )


def randomized(model, randomize, seed: int):
    model.load_state_dict(randomize(model.state_dict(), seed))
    return model.eval()


def hf_finetuned(randomize, overrides=SMALL, seed=0, **config):
    model = transformers.VideoMAEForVideoClassification(hf_config(overrides, use_mean_pooling=True, **config))
    model.fc_norm.eps = 1e-6  # HF builds fc_norm with eps 1e-5; the official models use 1e-6 everywhere
    return randomized(model, randomize, seed)


def hf_finetuned_embedding(model, clips: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        tokens = model.videomae(clips.permute(0, 2, 1, 3, 4)).last_hidden_state  # HF takes (B, T, C, H, W)
        return model.fc_norm(tokens.mean(dim=1))


def hf_to_old_names(state: dict) -> dict:
    """transformers < 5 stored the q/v biases as attention.attention.q_bias / v_bias."""
    return {re.sub(r"attention\.attention\.query\.bias$", "attention.attention.q_bias",
                   re.sub(r"attention\.attention\.value\.bias$", "attention.attention.v_bias", k)): v
            for k, v in state.items()}


def official_from_hf(state: dict) -> dict:
    """Write the official VideoMAE fine-tune layout (modeling_finetune.py names) from an HF state dict."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("videomae.")
        if key.startswith("classifier."):
            out["head." + key.split(".", 1)[1]] = value
        elif key.startswith("embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("encoder.layer."):
            _, _, layer, rest = key.split(".", 3)
            names = {
                "layernorm_before.weight": "norm1.weight", "layernorm_before.bias": "norm1.bias",
                "layernorm_after.weight": "norm2.weight", "layernorm_after.bias": "norm2.bias",
                "attention.attention.query.bias": "attn.q_bias", "attention.attention.value.bias": "attn.v_bias",
                "attention.output.dense.weight": "attn.proj.weight", "attention.output.dense.bias": "attn.proj.bias",
                "intermediate.dense.weight": "mlp.fc1.weight", "intermediate.dense.bias": "mlp.fc1.bias",
                "output.dense.weight": "mlp.fc2.weight", "output.dense.bias": "mlp.fc2.bias",
            }
            if rest in names:
                out[f"blocks.{layer}.{names[rest]}"] = value
        elif key.startswith("layernorm."):
            out["norm." + key.split(".", 1)[1]] = value
        elif key.startswith("fc_norm."):
            out[key] = value
    for layer in {k.split(".")[3] for k in state if k.startswith("videomae.encoder.layer.")}:
        prefix = f"videomae.encoder.layer.{layer}.attention.attention."
        out[f"blocks.{layer}.attn.qkv.weight"] = torch.cat(
            [state[prefix + "query.weight"], state[prefix + "key.weight"], state[prefix + "value.weight"]]
        )
    return out


def clips_for(overrides: dict, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, overrides["num_frames"], overrides["img_size"], overrides["img_size"],
                       generator=torch.Generator().manual_seed(7))


def assert_loads_to(name, path, overrides, clips, expected, pooling_word):
    loaded = create_encoder(name, weights=path, overrides=overrides)
    assert pooling_word in loaded.spec.pooling
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(clips).double(), expected.double(), rtol=1e-4, atol=1e-5)
    return loaded


def test_hugging_face_layouts_match_transformers(tmp_path, randomize, reference):
    model = hf_finetuned(randomize)
    clips = clips_for(SMALL)
    expected = hf_finetuned_embedding(model, clips)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    official = official_from_hf(state)
    # The official dict written above means what the official code means: check it independently.
    table = sinusoid_table_1d(8, 64)
    torch.testing.assert_close(
        reference(official, clips, num_heads=4, position_table=table, pooling="mean_norm").float(), expected,
        rtol=1e-4, atol=1e-5,
    )

    save_file(state, tmp_path / "hf-new.safetensors")  # transformers >= 5 names (query.bias / value.bias)
    loaded = assert_loads_to("videomae-b", tmp_path / "hf-new.safetensors", SMALL, clips, expected, "fc_norm")
    assert loaded.layout.startswith("Hugging Face")
    folder = tmp_path / "hf-old"  # a save_pretrained-style folder holding transformers 4 names
    folder.mkdir()
    torch.save(hf_to_old_names(state), folder / "pytorch_model.bin")
    assert_loads_to("videomae-b", folder, SMALL, clips, expected, "fc_norm")


@pytest.mark.parametrize("wrapping", ["bare", "module", "model-with-args", "module-prefix-fp16"])
def test_official_finetune_layouts(tmp_path, randomize, wrapping):
    model = hf_finetuned(randomize, seed=1)
    clips = clips_for(SMALL)
    official = official_from_hf(model.state_dict())
    if wrapping == "module-prefix-fp16":
        # A DDP-prefixed fp16 file: the reference uses the same fp16-rounded weights.
        model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
        checkpoint = {"module": {"module." + k: v.half() for k, v in official.items()}}
    elif wrapping == "bare":
        checkpoint = official
    elif wrapping == "module":
        checkpoint = {"module": official}
    else:  # the training script's checkpoint: weights beside the optimizer epoch and argparse arguments
        checkpoint = {"model": official, "epoch": 29, "args": argparse.Namespace(model="vit_base_patch16_224")}
    torch.save(checkpoint, tmp_path / "checkpoint.pth")
    expected = hf_finetuned_embedding(model, clips)
    assert_loads_to("videomae-b", tmp_path / "checkpoint.pth", SMALL, clips, expected, "fc_norm")


def test_pretrain_layouts_use_the_final_norm(tmp_path, randomize, reference):
    model = randomized(transformers.VideoMAEForPreTraining(hf_config(SMALL, use_mean_pooling=False)), randomize, 2)
    clips = clips_for(SMALL)
    with torch.inference_mode():
        expected = model.videomae(clips.permute(0, 2, 1, 3, 4)).last_hidden_state.mean(dim=1)  # layernorm inside
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert any(k.startswith("decoder.") for k in state) and "videomae.layernorm.weight" in state
    save_file(state, tmp_path / "hf-pretrain.safetensors")
    assert_loads_to("videomae-b", tmp_path / "hf-pretrain.safetensors", SMALL, clips, expected, "final-normalized")

    # Official pretrain checkpoint: encoder.* beside decoder.*, encoder_to_decoder and mask_token.
    encoder = official_from_hf({k: v for k, v in state.items() if k.startswith("videomae.")})
    torch.testing.assert_close(
        reference(encoder, clips, num_heads=4, position_table=sinusoid_table_1d(8, 64), pooling="mean").float(),
        expected, rtol=1e-4, atol=1e-5,
    )
    checkpoint = {f"encoder.{k}": v for k, v in encoder.items()}
    checkpoint.update({"decoder.blocks.0.norm1.weight": torch.ones(32), "encoder_to_decoder.weight": torch.zeros(32, 64),
                       "mask_token": torch.zeros(1, 1, 32)})
    torch.save({"model": checkpoint}, tmp_path / "pretrain.pth")
    assert_loads_to("videomae-b", tmp_path / "pretrain.pth", SMALL, clips, expected, "final-normalized")


@pytest.mark.parametrize("name", ["videomaev2-g", "videomaev2-s", "internvideo-h", "videomae-l"])
def test_other_videomae_format_models(tmp_path, randomize, name):
    """ViT-g/14 (head dim 88, MLP 48/11) and the other names share the converter; checked against HF too."""
    is_giant = name == "videomaev2-g"
    overrides = SMALL_G if is_giant else SMALL
    model = hf_finetuned(randomize, overrides, seed=3, **({"patch_size": 14, "mlp_ratio": 48 / 11} if is_giant else {}))
    clips = clips_for(overrides)
    save_file({k: v.half() for k, v in official_from_hf(model.state_dict()).items()}, tmp_path / "w.safetensors")
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})  # fp16-stored weights
    assert_loads_to(name, tmp_path / "w.safetensors", overrides, clips, hf_finetuned_embedding(model, clips), "fc_norm")


def test_layer_scale_checkpoints(tmp_path, randomize, reference):
    """Some VideoMAE v2 fine-tunes carry gamma_1/gamma_2; the converter switches layer scale on."""
    official = official_from_hf(hf_finetuned(randomize, seed=4).state_dict())
    generator = torch.Generator().manual_seed(5)
    for layer in range(2):
        official[f"blocks.{layer}.gamma_1"] = 0.5 + torch.rand(64, generator=generator)
        official[f"blocks.{layer}.gamma_2"] = 0.5 + torch.rand(64, generator=generator)
    torch.save({"model": official}, tmp_path / "ls.pth")
    clips = clips_for(SMALL)
    expected = reference(official, clips, num_heads=4, position_table=sinusoid_table_1d(8, 64), pooling="mean_norm")
    assert_loads_to("videomae-b", tmp_path / "ls.pth", SMALL, clips, expected.float(), "fc_norm")


def test_readable_reports_for_wrong_checkpoints(tmp_path, randomize):
    official = official_from_hf(hf_finetuned(randomize, seed=6).state_dict())
    # A learned position table is not this family's fixed sinusoid.
    torch.save({**official, "pos_embed": torch.randn(1, 8, 64)}, tmp_path / "learned.pth")
    with pytest.raises(FeatstoreError, match="learned position table"):
        create_encoder("videomae-b", weights=tmp_path / "learned.pth", overrides=SMALL)
    # A stored copy of the sinusoid itself is accepted (dropped).
    torch.save({**official, "pos_embed": sinusoid_table_1d(8, 64)[None]}, tmp_path / "fixed.pth")
    create_encoder("videomae-b", weights=tmp_path / "fixed.pth", overrides=SMALL)
    # Keys of no known layout: the report names the accepted layouts.
    torch.save({"something.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(FeatstoreError, match="cannot tell the checkpoint's key layout.*accepted layouts.*Hugging Face"):
        create_encoder("videomae-b", weights=tmp_path / "other.pth", overrides=SMALL)
    # A missing block: zero-missing-keys strictness, with the recognized layout in the message.
    del official["blocks.1.attn.q_bias"]
    torch.save(official, tmp_path / "partial.pth")
    with pytest.raises(FeatstoreError, match=r"layout: official.*1 missing keys.*blocks\.1\.attn\.q_bias"):
        create_encoder("videomae-b", weights=tmp_path / "partial.pth", overrides=SMALL)
    # Another model size: the shapes differ, said so.
    with pytest.raises(FeatstoreError, match="other shapes"):
        create_encoder("videomae-b", weights=tmp_path / "fixed.pth", overrides={**SMALL, "embed_dim": 128})
