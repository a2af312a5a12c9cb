"""Pretrain the ``demo-c3d`` encoder: the stand-in foundation model of the CPU demo.

Why it exists: a random-init video encoder sees the synthetic videos' background and little else
(measured with tiny-vit: action top-1 at chance, skin/shape/clothing attributes at chance, only the scene
readable), while the real encoders this toolkit serves (V-JEPA, VideoMAE, ...) carry both what moves and
what things look like. A demo whose raw features carry neither can show neither utility nor leakage, so
the demo encoder is a small 3D CNN trained on a *separate* synthetic dataset (its own seed, so no video,
render or noise draw is shared with the demo data) to predict the action and the four static attributes
of a clip, and "still" for a static clip (one frame tiled). Its features therefore encode motion and
appearance linearly, as a foundation model's would; the demo then measures how much of that the
anonymizer removes. The attributes are deliberately part of the pretraining target: leakage is the
premise the method starts from, not something the demo should be lucky to find.

``python -m featstore.encoders.demo_pretrain`` regenerates the shipped weights
(``featstore/encoders/weights/``) and the JSON record next to them (config, held-out accuracy, torch
version, time). Training is seeded; the bundled file is what the demo uses, so demo results do not
depend on float differences between machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from data_manifests.schema import Manifest
from featstore.decode import open_media
from featstore.encoders.demo_c3d import DEMO_C3D, DemoC3D, demo_c3d_spec
from featstore.hashing import file_sha256
from featstore.preprocess import normalize_crops, resize_crop_uint8
from data_manifests.synth import ATTRIBUTE_NAMES, CLASS_NAMES, SynthConfig, generate_synthetic, manifest_path

WEIGHTS_FILE = "demo-c3d.safetensors"
RECORD_FILE = "demo-c3d.json"
STILL_CLASS = len(CLASS_NAMES)  # the extra action target of static clips: nothing moves


@dataclass(frozen=True)
class PretrainConfig:
    data_seed: int = 1000  # the demo data uses seed 0: a different seed shares no draw with it
    train_per_class: int = 60  # = the number of training identities in the trimmed part
    test_per_class: int = 6
    n_subjects: int = 96
    images: int = 1500  # each still is a new identity: what attributes generalize from
    test_images: int = 100
    steps: int = 2400
    batch_size: int = 32
    static_share: float = 0.5  # fraction of each batch that is static clips
    still_share: float = 0.75  # fraction of the static clips taken from the image stills
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    attribute_weight: float = 2.0  # the attributes' BCE against the action CE: appearance is learned slower
    seed: int = 0

    def synth_config(self) -> SynthConfig:
        # Only the trimmed and image parts are used; the other parts are kept at their minimum sizes.
        return SynthConfig(seed=self.data_seed, n_subjects=self.n_subjects, train_per_class=self.train_per_class,
                           test_per_class=self.test_per_class, tad_train_videos=1, tad_test_videos=1,
                           ad_train_videos=2, ad_test_videos=2, image_train=self.images,
                           image_test=self.test_images)


class ClipBank:
    """Every frame of the pretraining videos as uint8 crops, and the labels to sample clips with."""

    def __init__(self, videos: list[torch.Tensor], labels: list[int], attributes: np.ndarray,
                 stills: torch.Tensor, still_attributes: np.ndarray):
        self.videos = videos                  # per video (T, 3, S, S) uint8
        self.labels = torch.tensor(labels)
        self.attributes = torch.from_numpy(attributes).float()
        self.stills = stills                  # (N, 3, S, S) uint8 image stills
        self.still_attributes = torch.from_numpy(still_attributes).float()

    def motion_batch(self, n: int, clip_len: int, generator: torch.Generator):
        picks = torch.randint(len(self.videos), (n,), generator=generator)
        clips = []
        for video in picks.tolist():
            frames = self.videos[video]
            start = int(torch.randint(len(frames) - clip_len + 1, (1,), generator=generator))
            clips.append(frames[start : start + clip_len])
        return torch.stack(clips), self.labels[picks], self.attributes[picks]

    def static_batch(self, n: int, clip_len: int, generator: torch.Generator, still_share: float = 0.5):
        """Frames of the videos and image stills (``still_share`` of them), each tiled to a clip."""
        from_videos = n - round(n * still_share)
        picks = torch.randint(len(self.videos), (from_videos,), generator=generator)
        frames = [self.videos[v][int(torch.randint(len(self.videos[v]), (1,), generator=generator))]
                  for v in picks.tolist()]
        still_picks = torch.randint(len(self.stills), (n - from_videos,), generator=generator)
        frames = torch.stack(frames + [self.stills[i] for i in still_picks.tolist()])
        attributes = torch.cat([self.attributes[picks], self.still_attributes[still_picks]])
        clips = frames[:, None].expand(-1, clip_len, -1, -1, -1)
        return clips, torch.full((n,), STILL_CLASS), attributes


def load_bank(root: Path, split: str, spec) -> ClipBank:
    """Decode the trimmed videos and image stills of ``split`` into a ClipBank."""
    preprocess = spec.preprocess()
    trimmed = Manifest.load(manifest_path(root, "synthetic"))
    videos, labels, attributes = [], [], []
    for record in trimmed.records:
        if record.split != split:
            continue
        source = open_media(trimmed.resolve_path(record), "auto", record.media)
        try:
            frames = source.read(np.arange(source.info.n_frames))
        finally:
            source.close()
        videos.append(resize_crop_uint8(frames, preprocess).contiguous())
        labels.append(record.label)
        attributes.append(record.attributes)
    images = Manifest.load(manifest_path(root, "synthetic-images"))
    stills, still_attributes = [], []
    for record in images.records:
        if record.split != split:
            continue
        source = open_media(images.resolve_path(record), "auto", record.media)
        try:
            stills.append(resize_crop_uint8(source.read(np.zeros(1, dtype=np.int64)), preprocess)[0])
        finally:
            source.close()
        still_attributes.append(record.attributes)
    return ClipBank(videos, labels, np.array(attributes, dtype=np.int64), torch.stack(stills),
                    np.array(still_attributes, dtype=np.int64))


class PretrainModel(nn.Module):
    """The encoder plus the linear heads that make its pooled embedding carry action and attributes."""

    def __init__(self):
        super().__init__()
        self.encoder = DemoC3D(DEMO_C3D)
        self.action_head = nn.Linear(DEMO_C3D.embed_dim, STILL_CLASS + 1)
        self.attribute_head = nn.Linear(DEMO_C3D.embed_dim, len(ATTRIBUTE_NAMES))

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(clips)
        return self.action_head(embedding), self.attribute_head(embedding)


def _as_input(clips_uint8: torch.Tensor, spec) -> torch.Tensor:
    """(B, T, 3, S, S) uint8 -> (B, 3, T, S, S) normalized float, the layout the encoder reads."""
    return normalize_crops(clips_uint8, spec.preprocess()).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def held_out_accuracy(model: PretrainModel, bank: ClipBank, spec, clip_len: int, seed: int) -> dict:
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    n = len(bank.videos)
    clips, labels, attributes = bank.motion_batch(n * 2, clip_len, generator)
    action_logits, attribute_logits = model(_as_input(clips, spec))
    still_clips, _, still_attributes = bank.static_batch(n, clip_len, generator)
    still_action, still_attribute_logits = model(_as_input(still_clips, spec))
    model.train()
    motion_attr = ((attribute_logits > 0).float() == attributes).float().mean(0)
    still_attr = ((still_attribute_logits > 0).float() == still_attributes).float().mean(0)
    return {
        "action_top1_motion_clips": float((action_logits[:, :STILL_CLASS].argmax(1) == labels).float().mean()),
        "still_recognized": float((still_action.argmax(1) == STILL_CLASS).float().mean()),
        "attribute_accuracy_motion_clips": dict(zip(ATTRIBUTE_NAMES, motion_attr.tolist())),
        "attribute_accuracy_static_clips": dict(zip(ATTRIBUTE_NAMES, still_attr.tolist())),
    }


def pretrain(config: PretrainConfig, out_dir: Path, data_dir: Path | None = None, show_progress: bool = True,
             log_every: int = 0) -> dict:
    """Generate the pretraining data, train, and write the weights (float16 safetensors) and a JSON record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="demo-c3d-data-") as scratch:
        root = Path(data_dir) if data_dir is not None else Path(scratch)
        if not manifest_path(root, "synthetic").is_file():
            generate_synthetic(root, config.synth_config(), show_progress=show_progress)
        spec = demo_c3d_spec()
        train_bank = load_bank(root, "train", spec)
        test_bank = load_bank(root, "test", spec)

    torch.manual_seed(config.seed)
    model = PretrainModel()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / config.warmup_steps)
                                                 * 0.5 * (1 + np.cos(np.pi * step / config.steps)))
    generator = torch.Generator().manual_seed(config.seed)
    n_static = max(1, round(config.batch_size * config.static_share))
    clip_len = DEMO_C3D.num_frames
    losses = []
    bar = tqdm(range(config.steps), desc="pretrain demo-c3d", disable=not show_progress)
    for step in bar:
        motion, motion_labels, motion_attributes = train_bank.motion_batch(config.batch_size - n_static, clip_len, generator)
        still, still_labels, still_attributes = train_bank.static_batch(n_static, clip_len, generator,
                                                                        config.still_share)
        clips = _as_input(torch.cat([motion, still]), spec)
        action_logits, attribute_logits = model(clips)
        loss = (F.cross_entropy(action_logits, torch.cat([motion_labels, still_labels]))
                + config.attribute_weight * F.binary_cross_entropy_with_logits(
                    attribute_logits, torch.cat([motion_attributes, still_attributes])))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if log_every and (step + 1) % log_every == 0:
            held_out = held_out_accuracy(model, test_bank, spec, clip_len, config.seed)
            tqdm.write(f"step {step + 1}: loss {np.mean(losses[-50:]):.3f} "
                       f"action {held_out['action_top1_motion_clips']:.3f} "
                       f"attributes(static) {held_out['attribute_accuracy_static_clips']}", file=sys.stderr)

    weights = {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
               for k, v in model.encoder.state_dict().items()}
    weights_path = out_dir / WEIGHTS_FILE
    save_file(weights, str(weights_path), metadata={"model": "demo-c3d", "format": "native"})
    record = {
        "model": "demo-c3d",
        "architecture": asdict(DEMO_C3D),
        "pretrain_config": asdict(config),
        "held_out": held_out_accuracy(model, test_bank, spec, clip_len, config.seed),
        "final_loss_mean_last_50": float(np.mean(losses[-50:])),
        "seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "weights_sha256": file_sha256(weights_path),
    }
    (out_dir / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description="Pretrain the demo-c3d encoder on its own synthetic data.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    parser.add_argument("--data", type=Path, default=None, help="keep/reuse the generated pretraining data here")
    parser.add_argument("--steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--log-every", type=int, default=200, help="held-out accuracy every N steps (0: never)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    record = pretrain(PretrainConfig(steps=args.steps), args.out, args.data, show_progress=not args.no_progress,
                      log_every=args.log_every)
    print(json.dumps(record["held_out"], indent=2))


if __name__ == "__main__":
    main()
