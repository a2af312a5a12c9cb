"""Registry-wide checks: every registered encoder is exercised here automatically."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from featstore.encoders import create_encoder, list_encoders
from featstore.encoders._registry import load_state_dict_file
from featstore.errors import FeatstoreError

# Small overrides so full-size families run quickly on the CPU; each family module names its own.
SMALL = {"tiny-vit": {}}


@pytest.mark.parametrize("entry", list_encoders(), ids=lambda e: e.name)
def test_every_encoder_builds_and_matches_its_spec(entry):
    torch.manual_seed(0)
    module, spec = entry.build(SMALL[entry.name])  # random init: checkpoints are not needed for the shapes
    module.eval()
    assert spec.name == entry.name
    if not SMALL[entry.name]:
        assert spec == entry.spec  # the listed spec is the built model's
    clips = torch.randn(2, 3, spec.num_frames, spec.resolution, spec.resolution)
    with torch.inference_mode():
        out = module(clips)
    assert out.shape == (2, spec.embed_dim)
    assert torch.isfinite(out).all()
    # Batch independence: a clip's embedding does not depend on its batch mates.
    with torch.inference_mode():
        alone = module(clips[:1])
    torch.testing.assert_close(alone, out[:1], atol=1e-5, rtol=1e-5)


def test_seeded_init_is_deterministic_and_hashed():
    a, b, c = create_encoder("tiny-vit", seed=0), create_encoder("tiny-vit", seed=0), create_encoder("tiny-vit", seed=1)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    assert a.weights == "random-init(seed=0)"


def test_weights_round_trip_through_safetensors_and_torch_files(tmp_path):
    source = create_encoder("tiny-vit", seed=5)
    state = {k: v.contiguous() for k, v in source.module.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    clips = torch.randn(1, 3, 16, 64, 64)
    with torch.inference_mode():
        expected = source.module(clips)
    for name in ("w.safetensors", "w.pt"):
        loaded = create_encoder("tiny-vit", weights=tmp_path / name, seed=0)
        assert len(loaded.weights_sha256) == 64 and loaded.weights.endswith(name)
        with torch.inference_mode():
            torch.testing.assert_close(loaded.module(clips), expected)


def test_mismatched_weights_get_a_readable_report(tmp_path):
    state = create_encoder("tiny-vit").module.state_dict()
    state.pop("norm.weight")
    state["head.weight"] = torch.zeros(3)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "bad.safetensors")
    with pytest.raises(FeatstoreError, match=r"1 missing keys .*norm.weight.*1 unexpected keys .*head.weight"):
        create_encoder("tiny-vit", weights=tmp_path / "bad.safetensors")


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickled code ran')",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"weight": Boom()}, handle)
    with pytest.raises(FeatstoreError, match="safely"):
        load_state_dict_file(path)


def test_unknown_model_and_bad_override():
    with pytest.raises(FeatstoreError, match="unknown model"):
        create_encoder("vit-gigantic")
    with pytest.raises(FeatstoreError, match="bad override"):
        create_encoder("tiny-vit", overrides={"depht": 2})
