"""Anonymizer throughput, measured side by side in one run:

1. training clips/s streaming rows from the Zarr store (``row_source="stream"``: LRU chunk cache,
   block-shuffled video order) vs from in-memory tensors (``row_source="memory"``); target ratio >= 0.8.
2. export rows/s (``anonymize export``: read shards, AAM, write the anonymized store) vs a bare batched
   forward of the same AAM over the same rows already in memory.

    python benchmarks/train_throughput.py [--videos 12000] [--epochs 2] [--cache-chunks 16] [--device cpu]

The store is written from random arrays (``anonymize.array_store``; 192-d float16 like the demo
encoder) and is larger than the stream cache, so streaming really reads chunks during training.
clips/s counts every row fed to the AAM in a training step (the action clips + 2 static clips per video).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anonymize.array_store import write_array_store  # noqa: E402
from anonymize.config import TrainConfig  # noqa: E402
from anonymize.export import export_store, load_trained_aam  # noqa: E402
from anonymize.train import train  # noqa: E402
from featstore.store import Store  # noqa: E402


def make_store(path: Path, n_videos: int, dim: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    clips = [rng.normal(size=(int(rng.integers(4, 9)), dim)).astype(np.float16) for _ in range(n_videos)]
    static = [rng.normal(size=(10, dim)).astype(np.float16) for _ in range(n_videos)]
    splits = ["train" if v % 5 else "test" for v in range(n_videos)]
    labels = (np.arange(n_videos) % 10).tolist()
    attributes = rng.integers(0, 2, size=(n_videos, 4))
    return write_array_store(path, clips, static, splits, labels, attributes, [f"c{i}" for i in range(10)],
                             [f"a{i}" for i in range(4)], description="throughput benchmark (random rows)")


def training_rate(store: Path, out: Path, source: str, args) -> tuple[float, float]:
    config = TrainConfig(store=str(store), out=str(out), row_source=source, epochs=args.epochs,
                         batch_size=args.batch_size, identity={"preset": "zero"}, head_init_epochs=0,
                         validate_every=0, progress=False, device=args.device,
                         stream_cache_chunks=args.cache_chunks)
    result = train(config)
    epochs = [h for h in result.history if h.get("epoch", 0) > 0]
    rows = sum(h["clips_per_s"] * h["seconds"] for h in epochs)
    seconds = sum(h["seconds"] for h in epochs)
    return rows / seconds, seconds


def bare_forward_rate(run: Path, store: Path, device: str, batch_rows: int) -> float:
    aam = load_trained_aam(run, device)
    opened = Store.open(store)
    rows = [torch.from_numpy(opened.load_embeddings(kind)) for kind in ("clips", "static")]
    total = sum(len(r) for r in rows)
    started = time.perf_counter()
    with torch.no_grad():
        for values in rows:
            for start in range(0, len(values), batch_rows):
                aam.module(values[start : start + batch_rows].to(aam.device)).cpu()
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=12000)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--cache-chunks", type=int, default=16)
    parser.add_argument("--batch-rows", type=int, default=4096)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        store = make_store(tmp / "bench.zarr", args.videos, args.dim)
        opened = Store.open(store)
        chunk = opened.clip_embeddings.chunks[0]
        print(f"store: {args.videos} videos, {opened.clip_embeddings.shape[0]} clips + "
              f"{opened.static_embeddings.shape[0]} static rows, {args.dim}-d float16, {chunk} rows per chunk "
              f"({opened.clip_embeddings.shape[0] // chunk + 1} + {opened.static_embeddings.shape[0] // chunk + 1} "
              f"chunks; stream cache {args.cache_chunks}); written in {time.perf_counter() - started:.1f}s")
        # Alternate the two sources twice so that machine load drifts affect both alike.
        rates = {"memory": [], "stream": []}
        for round_ in range(2):
            for source in ("memory", "stream"):
                rate, seconds = training_rate(store, tmp / f"run-{source}-{round_}", source, args)
                rates[source].append(rate)
                print(f"train {source:6s} round {round_}: {rate:9.0f} clips/s ({seconds:.1f}s for {args.epochs} epochs)")
        memory, stream = max(rates["memory"]), max(rates["stream"])
        print(f"training clips/s: memory {memory:.0f}, stream {stream:.0f}; ratio stream/memory {stream / memory:.2f} "
              f"(target >= 0.8)")
        run = tmp / "run-memory-0"
        exported = export_store(run, store, tmp / "anon.zarr", device=args.device, batch_rows=args.batch_rows)
        export_rate = exported.rows / exported.seconds
        bare = bare_forward_rate(run, store, args.device, args.batch_rows)
        print(f"export rows/s: {export_rate:.0f} ({exported.rows} rows in {exported.seconds:.1f}s); bare batched AAM "
              f"forward: {bare:.0f} rows/s; ratio export/bare {export_rate / bare:.2f}")


if __name__ == "__main__":
    main()
