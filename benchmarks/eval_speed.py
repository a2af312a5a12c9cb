"""Evaluation speed: the full privacy protocol and the AR protocol on large random stores, with the share
of time spent outside the training loops.

    python benchmarks/eval_speed.py [--n-static 50000] [--dim 1280] [--privacy-epochs 100]
                                    [--ar-videos 10000] [--ar-clips 8] [--ar-epochs 250] [--device cpu]

1. Privacy: a store of --n-static images (one static clip each, 80 % train / 20 % test), --dim float16
   embeddings = standard normal noise + a planted direction per private attribute (7 attributes), so the
   attacker has something to learn. ``evaluate privacy`` with both attackers, --privacy-epochs epochs.
2. AR: a store of --ar-videos videos x --ar-clips clips (400 classes, class mean + noise), the linear
   probe with the official preset (250 epochs, batch 1024, one random clip per video per epoch).

Each protocol is timed end to end through ``run(Store.open(path), config)``: reading the store,
building tensors, the training loops, the final metrics. Reported: total, time in the training loops
(optimizer steps; batch gathering and per-epoch model selection shown separately, both inside), time
outside the loops, and the data-handling share = (outside the loops + batch gathering) / total.
Target: data handling < 10 %. Store writing (the setup) is not timed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from data_manifests.schema import VideoRecord
from evaluate.protocols import ar, privacy
from evaluate.settings import PROBE_EPOCHS, AttackerSettings
from featstore.store import Part, StagingArea, Store, StoreContents, VideoResult, write_store

VIDEOS_PER_PART = 1000
N_ATTRIBUTES = 7
N_CLASSES = 400


def write_random_store(path: Path, records: list[VideoRecord], clips_per_video: int, static_per_video: int,
                       embed, header: dict) -> Store:
    """A store written through the store's own writer; ``embed(video_indices, kind, n_rows)`` gives the rows."""
    dim = header["dim"]
    staging = StagingArea(path, dim, "float16")
    staging.root.mkdir(parents=True)
    n_parts = 0
    for n_parts, start in enumerate(range(0, len(records), VIDEOS_PER_PART), start=1):
        chunk = np.arange(start, min(start + VIDEOS_PER_PART, len(records)))
        clips = embed(chunk, "clips", clips_per_video)
        static = embed(chunk, "static", static_per_video)
        results = []
        for i, v in enumerate(chunk):
            frames = np.stack([np.arange(clips_per_video) * 16, np.arange(clips_per_video) * 16 + 16], axis=1)
            results.append(VideoResult(
                records[v].video_id, decoder="bench", n_frames=max(1, clips_per_video * 16), fps=25.0,
                duration=clips_per_video * 16 / 25,
                clip_embeddings=clips[i * clips_per_video : (i + 1) * clips_per_video], clip_frames=frames,
                clip_times=frames / 25.0, static_embeddings=static[i * static_per_video : (i + 1) * static_per_video],
                static_frames=np.zeros(static_per_video, np.int64)))
        staging.save_part(Part(n_parts - 1, results))
    dataset_header = {"name": header["name"], "task": header["task"], "class_names": header["class_names"],
                      "attribute_names": header["attribute_names"]}
    attrs = {"dataset": {"header": dataset_header, "fingerprint": "benchmark", "n_videos": len(records)},
             "provenance": {"encoder": "benchmark-random", "weights": "none"}}
    write_store(path, StoreContents(records, header["attribute_names"], attrs), staging, n_parts)
    staging.remove()
    return Store.open(path)


def privacy_store(path: Path, n: int, dim: int, seed: int = 0) -> Store:
    rng = np.random.default_rng(seed)
    attributes = rng.integers(0, 2, size=(n, N_ATTRIBUTES))
    directions = rng.standard_normal((N_ATTRIBUTES, dim)).astype(np.float32) / np.sqrt(dim) * 1.0
    records = [VideoRecord(f"img{v:06d}", f"img{v:06d}.png", "train" if v % 5 else "test",
                           attributes=attributes[v].tolist(), media="image") for v in range(n)]

    def embed(videos, kind, rows):
        if rows == 0:
            return np.zeros((0, dim), np.float32)
        signal = (2.0 * attributes[videos] - 1.0).astype(np.float32) @ directions
        return rng.standard_normal((len(videos), dim), dtype=np.float32) + signal

    header = {"name": "bench-privacy", "task": "static", "class_names": [], "dim": dim,
              "attribute_names": [f"attr{a}" for a in range(N_ATTRIBUTES)]}
    return write_random_store(path, records, 0, 1, embed, header)


def ar_store(path: Path, n_videos: int, clips: int, dim: int, seed: int = 0) -> Store:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, size=n_videos)
    means = rng.standard_normal((N_CLASSES, dim)).astype(np.float32) * 0.15
    records = [VideoRecord(f"v{v:06d}", f"v{v:06d}.mp4", "train" if v % 5 else "test", label=int(labels[v]))
               for v in range(n_videos)]

    def embed(videos, kind, rows):
        if rows == 0:
            return np.zeros((0, dim), np.float32)
        return rng.standard_normal((len(videos) * rows, dim), dtype=np.float32) + np.repeat(means[labels[videos]], rows, 0)

    header = {"name": "bench-ar", "task": "action", "class_names": [f"c{c}" for c in range(N_CLASSES)], "dim": dim,
              "attribute_names": []}
    return write_random_store(path, records, clips, 0, embed, header)


def report(name: str, metrics: dict, headline: str) -> dict:
    timing = metrics["timing"]
    data_share = (timing["outside_loop_s"] + timing["batch_gather_s"]) / timing["total_s"]
    print(f"\n{name}: {headline}")
    print(f"  total {timing['total_s']:.1f} s | training loops {timing['training_loop_s']:.1f} s "
          f"(batch gathering {timing['batch_gather_s']:.2f} s, per-epoch selection {timing['selection_s']:.2f} s) | "
          f"outside the loops {timing['outside_loop_s']:.2f} s ({timing['outside_loop_share']:.1%})")
    print(f"  data handling (outside the loops + batch gathering): {data_share:.1%} of the total (target < 10 %)")
    return {"timing": timing, "data_handling_share": data_share, "headline": headline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-static", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--privacy-epochs", type=int, default=AttackerSettings.epochs)
    parser.add_argument("--attacker", default="both", choices=["both", "standard", "authors"])
    parser.add_argument("--ar-videos", type=int, default=10_000)
    parser.add_argument("--ar-clips", type=int, default=8)
    parser.add_argument("--ar-epochs", type=int, default=PROBE_EPOCHS)
    parser.add_argument("--device", default="cpu", help="cpu (the target of this benchmark), auto or cuda.")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads [default: torch's].")
    parser.add_argument("--skip", choices=["privacy", "ar"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    # torch imports its compiler stack when the first optimizer is built (seconds, once per process):
    # pay it here so the timings below are the protocols' own
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())
    figures = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        if args.skip != "privacy":
            started = time.perf_counter()
            store = privacy_store(Path(tmp) / "privacy.zarr", args.n_static, args.dim)
            print(f"privacy store: {args.n_static} static embeddings x {args.dim} written in "
                  f"{time.perf_counter() - started:.1f} s (not timed below)")
            config = privacy.PrivacyConfig(attacker=args.attacker, epochs=args.privacy_epochs, device=args.device)
            metrics = privacy.run(store, config, show_progress=True)
            cmaps = ", ".join(f"{a} cMAP {m['cmap']:.4f} (epoch {m['selected_epoch']})" for a, m in metrics["attackers"].items())
            figures["privacy"] = report(f"privacy ({args.attacker}, {args.privacy_epochs} epochs, batch "
                                        f"{config.batch_size})", metrics, f"{cmaps}; chance {metrics['chance_cmap']:.4f}")
        if args.skip != "ar":
            started = time.perf_counter()
            store = ar_store(Path(tmp) / "ar.zarr", args.ar_videos, args.ar_clips, args.dim)
            print(f"\nAR store: {args.ar_videos} videos x {args.ar_clips} clips x {args.dim} written in "
                  f"{time.perf_counter() - started:.1f} s (not timed below)")
            config = ar.ARConfig(epochs=args.ar_epochs, device=args.device)
            metrics = ar.run(store, config, show_progress=True)
            figures["ar"] = report(f"AR ({args.ar_epochs} epochs, batch {config.batch_size})", metrics,
                                   f"top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}, chance {metrics['chance_top1']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
