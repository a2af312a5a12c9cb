"""V-JEPA 2 through transformers: a save_pretrained folder loads offline and matches VJEPA2Model itself."""

from __future__ import annotations

import pytest
import torch

from featstore.encoders import create_encoder, list_encoders

transformers = pytest.importorskip("transformers", reason="transformers (test-only dependency) is not installed")
if "vjepa2" not in {e.name for e in list_encoders()}:
    pytest.skip("transformers is older than 4.53 (no VJEPA2)", allow_module_level=True)

SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, crop_size=32, frames_per_clip=4,
             pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=4, num_pooler_layers=1)


def test_save_pretrained_folder_matches_vjepa2model(tmp_path, randomize):
    model = transformers.VJEPA2Model(transformers.VJEPA2Config(**SMALL))
    model.load_state_dict(randomize(model.state_dict(), 0))
    model.eval()
    model.save_pretrained(tmp_path / "vjepa2-small")
    clips = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(clips.permute(0, 2, 1, 3, 4), skip_predictor=True).last_hidden_state.mean(dim=1)
    # The architecture (64-d, 2 layers, 32 px, 4 frames) comes from the folder's config.json: no overrides.
    loaded = create_encoder("vjepa2", weights=tmp_path / "vjepa2-small")
    assert (loaded.spec.embed_dim, loaded.spec.num_frames, loaded.spec.resolution) == (64, 4, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(clips), expected, rtol=1e-4, atol=1e-5)


def test_classification_checkpoint_drops_pooler_and_head(tmp_path, randomize):
    model = transformers.VJEPA2ForVideoClassification(transformers.VJEPA2Config(**SMALL, num_labels=3))
    model.load_state_dict(randomize(model.state_dict(), 2))
    model.eval()
    model.save_pretrained(tmp_path / "vjepa2-cls")
    clips = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        tokens = model.vjepa2(clips.permute(0, 2, 1, 3, 4), skip_predictor=True).last_hidden_state
    loaded = create_encoder("vjepa2", weights=tmp_path / "vjepa2-cls")
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(clips), tokens.mean(dim=1), rtol=1e-4, atol=1e-5)
