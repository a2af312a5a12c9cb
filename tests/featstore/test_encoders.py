"""Registry-wide checks: every registered encoder is exercised here automatically."""

import bz2
import gzip
import hashlib
import lzma
import pickle

import pytest
import torch
from safetensors.torch import save_file

from featstore.encoders import create_encoder, get_encoder_entry, list_encoders
from featstore.encoders._registry import WEIGHTS_DIR_ENV, load_state_dict_file
from featstore.hashing import file_sha256
from data_manifests.errors import FeatstoreError

# Small overrides so full-size families run quickly on the CPU (same code path, fewer layers and dims).
# A newly registered encoder fails test_every_encoder_has_small_overrides until it is listed here.
VIT_SMALL = dict(embed_dim=64, depth=2, num_heads=4, img_size=32, num_frames=4)
SMALL = {
    "tiny-vit": {}, "demo-c3d": {},
    "vjepa-l": dict(VIT_SMALL, embed_dim=96), "vjepa-h": dict(VIT_SMALL, embed_dim=96),
    "vjepa-h-384": dict(VIT_SMALL, embed_dim=96),
    "videomae-b": VIT_SMALL, "videomae-l": VIT_SMALL, "videomae-h": VIT_SMALL,
    "videomaev2-g": dict(embed_dim=176, depth=2, num_heads=2, img_size=28, num_frames=4),  # patch 14, head 88
    "videomaev2-b": VIT_SMALL, "videomaev2-s": VIT_SMALL, "internvideo-h": VIT_SMALL,
    "i3d": dict(num_frames=9, img_size=193),  # the smallest clip the official head pools
    "vjepa2": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, crop_size=32, frames_per_clip=4),
    # Optional torchvision extras (registered only where torchvision imports; not run in this project's env).
    "r2plus1d-18": dict(num_frames=4, img_size=32), "mvit-v2-s": {}, "swin3d-b": dict(num_frames=4, img_size=64),
    "s3d": dict(num_frames=16),
}


pytestmark = pytest.mark.usefixtures("single_thread")  # small models: one thread is as fast


def test_every_encoder_has_small_overrides():
    assert {entry.name for entry in list_encoders()} <= set(SMALL)


@pytest.mark.parametrize("entry", list_encoders(), ids=lambda e: e.name)
def test_full_size_spec_is_the_listed_spec(entry):
    with torch.device("meta"):  # full size without allocating it
        _, spec = entry.build({})
    assert spec == entry.spec and spec.name == entry.name


@pytest.mark.parametrize("entry", list_encoders(), ids=lambda e: e.name)
def test_every_encoder_builds_and_matches_its_spec(entry):
    torch.manual_seed(0)
    module, spec = entry.build(dict(SMALL[entry.name]))  # random init: checkpoints are not needed for shapes
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


@pytest.mark.parametrize("entry", list_encoders(), ids=lambda e: e.name)
def test_weights_saved_from_a_built_model_load_back(entry, tmp_path):
    """Every family's converter accepts the module's own key names (and fp16 files) and loads them strictly."""
    torch.manual_seed(1)
    module, spec = entry.build(dict(SMALL[entry.name]))
    module.eval()
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in module.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    module.load_state_dict({k: v.to(module.state_dict()[k].dtype) for k, v in state.items()})  # fp16-rounded
    loaded = create_encoder(entry.name, weights=tmp_path / "w.safetensors", overrides=dict(SMALL[entry.name]))
    assert loaded.spec == spec
    clips = torch.randn(2, 3, spec.num_frames, spec.resolution, spec.resolution)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(clips), module(clips))


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
    with pytest.raises(FeatstoreError, match="bad override.*known fields"):
        get_encoder_entry("videomae-b").build({"pooling_mode": "mean"})
    with pytest.raises(FeatstoreError, match="qkv_bias must be one of"):
        get_encoder_entry("videomae-b").build({"qkv_bias": True})


def test_real_encoders_ask_for_their_checkpoint(monkeypatch, tmp_path):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(FeatstoreError, match=r"needs its checkpoint: pass --weights PATH, or put vith16\.pth\.tar"):
        create_encoder("vjepa-h")
    with pytest.raises(FeatstoreError, match="weights file not found"):
        create_encoder("vjepa-h", weights=tmp_path / "missing.pth.tar")


def test_weights_directory_and_weights_dir_lookup(monkeypatch, tmp_path):
    source = create_encoder("tiny-vit", seed=4)
    state = {k: v.contiguous() for k, v in source.module.state_dict().items()}
    keys = sorted(state)
    folder = tmp_path / "sharded"  # a save_pretrained-style folder with two safetensors shards
    folder.mkdir()
    save_file({k: state[k] for k in keys[: len(keys) // 2]}, folder / "model-00001-of-00002.safetensors")
    save_file({k: state[k] for k in keys[len(keys) // 2 :]}, folder / "model-00002-of-00002.safetensors")
    clips = torch.randn(1, 3, 16, 64, 64)
    loaded = create_encoder("tiny-vit", weights=folder)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(clips), source.module(clips))
    shard_digests = "".join(f"{f.name} {file_sha256(f)}\n" for f in sorted(folder.glob("*.safetensors")))
    assert loaded.weights_sha256 == hashlib.sha256(shard_digests.encode()).hexdigest()

    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    save_file(state, weights_dir / "tiny-vit.safetensors")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_dir))
    found = create_encoder("tiny-vit")  # no --weights: $FEATSTORE_WEIGHTS_DIR/<name>.safetensors is used
    assert found.weights == str(weights_dir / "tiny-vit.safetensors")
    assert found.weights_sha256 == file_sha256(weights_dir / "tiny-vit.safetensors")


def test_compressed_checkpoints_are_read(tmp_path):
    source = create_encoder("tiny-vit", seed=6)
    state = {k: v.contiguous() for k, v in source.module.state_dict().items()}
    torch.save(state, tmp_path / "w.pth")
    save_file(state, tmp_path / "w.safetensors")
    clips = torch.randn(1, 3, 16, 64, 64)
    with torch.inference_mode():
        expected = source.module(clips)
    for plain in ("w.pth", "w.safetensors"):
        (tmp_path / f"{plain}.gz").write_bytes(gzip.compress((tmp_path / plain).read_bytes(), compresslevel=1))
        loaded = create_encoder("tiny-vit", weights=tmp_path / f"{plain}.gz")
        assert loaded.weights_sha256 == file_sha256(tmp_path / f"{plain}.gz")  # the file as given
        with torch.inference_mode():
            torch.testing.assert_close(loaded.module(clips), expected)
    torch.save({"weight": torch.arange(4.0)}, tmp_path / "small.pth")
    for suffix, compress in ((".xz", lzma.compress), (".bz2", bz2.compress)):
        (tmp_path / f"small.pth{suffix}").write_bytes(compress((tmp_path / "small.pth").read_bytes()))
        assert torch.equal(load_state_dict_file(tmp_path / f"small.pth{suffix}")["weight"], torch.arange(4.0))
    (tmp_path / "cut.pth.gz").write_bytes(gzip.compress((tmp_path / "w.pth").read_bytes())[:1000])
    with pytest.raises(FeatstoreError, match=r"^cannot decompress .*cut\.pth\.gz \(gzip\)"):
        load_state_dict_file(tmp_path / "cut.pth.gz")
    (tmp_path / "w.pth.zst").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(16))
    with pytest.raises(FeatstoreError, match=r"w\.pth\.zst is zstd-compressed: decompress it first"):
        load_state_dict_file(tmp_path / "w.pth.zst")


def test_another_models_checkpoint_is_named(tmp_path):
    """Weights of another family: the report names the layout they have and the models that read it."""
    videomae, _ = get_encoder_entry("videomae-b").build(dict(VIT_SMALL))
    renames = (("patch_embed.", "patch_embed.proj."), (".mlp.0.", ".mlp.fc1."), (".mlp.2.", ".mlp.fc2."))
    official = {}  # the MCG-NJU/VideoMAE key names
    for key, value in videomae.state_dict().items():
        for ours, theirs in renames:
            key = key.replace(ours, theirs)
        official[key] = value
    torch.save({"model": official}, tmp_path / "videomae.pth")
    with pytest.raises(FeatstoreError, match=r"^weights do not match 'vjepa-l': .*videomae\.pth looks like a "
                                             r"checkpoint of internvideo / videomae / videomae-v2, not of vjepa \(read "
                                             r"as layout official VideoMAE, wrapper model by internvideo-h, videomae-b, "
                                             r".*videomaev2-s\); pass one of those as --model$"):
        create_encoder("vjepa-l", weights=tmp_path / "videomae.pth", overrides=SMALL["vjepa-l"])
    # A layout the chosen family cannot even parse (an I3D file for a ViT) is named too.
    i3d, _ = get_encoder_entry("i3d").build(dict(SMALL["i3d"]))
    torch.save(i3d.state_dict(), tmp_path / "i3d.pt")
    with pytest.raises(FeatstoreError, match=r"looks like a checkpoint of i3d, not of videomae \(read as layout "
                                             r"pytorch-i3d, wrapper bare by i3d\)"):
        create_encoder("videomae-b", weights=tmp_path / "i3d.pt", overrides=VIT_SMALL)


def test_a_file_that_is_not_weights_is_one_line(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(FeatstoreError, match="is not a weights file"):
        load_state_dict_file(text)
    legacy = tmp_path / "legacy.pt"  # torch's pre-zip format is a pickle stream, still read safely
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(load_state_dict_file(legacy)["w"], torch.ones(2))
