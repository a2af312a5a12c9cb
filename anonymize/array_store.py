"""Writing a feature store straight from arrays (no videos, no encoder), through the Store writer.

For tests, the streaming benchmark (a store larger than the demo's) and controlled experiments where
the embedding's structure is known. The store has the standard layout; its provenance says
``encoder: "arrays"`` so it can never be mistaken for extracted features.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from data_manifests.schema import VideoRecord
from featstore.store import Part, StagingArea, StoreContents, VideoResult, write_store


def write_array_store(out: Path, clips: list[np.ndarray], static: list[np.ndarray], splits: list[str],
                      labels: list[int], attributes: np.ndarray, class_names: list[str],
                      attribute_names: list[str], description: str = "array store", dtype: str = "float16",
                      videos_per_part: int = 256) -> Path:
    """One store video per entry of ``clips`` ((n_v, D) rows) and ``static`` ((k_v, D) rows)."""
    out = Path(out)
    dim = int(clips[0].shape[1])
    records, results = [], []
    for index, (clip_rows, static_rows) in enumerate(zip(clips, static)):
        video_id = f"v{index:06d}"
        n = len(clip_rows)
        records.append(VideoRecord(video_id=video_id, path=f"{video_id}.mp4", split=splits[index], label=int(labels[index]),
                                   attributes=[int(a) for a in attributes[index]], subject=f"s{index % 7}",
                                   fps=25.0, duration=n * 16 / 25.0, n_frames=n * 16))
        starts = np.arange(n, dtype=np.int64) * 16
        results.append(VideoResult(
            video_id=video_id, decoder="arrays", n_frames=n * 16, fps=25.0, duration=n * 16 / 25.0,
            clip_embeddings=np.asarray(clip_rows, dtype=dtype),
            clip_frames=np.stack([starts, starts + 16], 1),
            clip_times=np.stack([starts, starts + 16], 1) / 25.0,
            static_embeddings=np.asarray(static_rows, dtype=dtype),
            static_frames=np.linspace(0, max(0, n * 16 - 1), len(static_rows)).astype(np.int64),
        ))
    digest = hashlib.sha256()
    for block in clips:
        digest.update(np.ascontiguousarray(block, dtype=np.float32).tobytes())
    fingerprint = digest.hexdigest()
    header = {"manifest": "featstore-manifest", "version": 1, "name": "arrays", "task": "action",
              "class_names": list(class_names), "attribute_names": list(attribute_names), "root": ".",
              "description": description}
    attrs = {
        "identity": {"model": "arrays", "weights_sha256": fingerprint},
        "config": {"source": "anonymize.array_store"},
        "provenance": {"encoder": "arrays", "weights": description, "weights_sha256": fingerprint},
        "dataset": {"header": header, "fingerprint": fingerprint, "source": None, "n_videos": len(records)},
    }
    with tempfile.TemporaryDirectory() as staging_dir:
        staging = StagingArea(Path(staging_dir), dim, dtype)
        staging.root.mkdir(parents=True)
        n_parts = 0
        for start in range(0, len(results), videos_per_part):
            staging.save_part(Part(n_parts, results[start : start + videos_per_part]))
            n_parts += 1
        write_store(out, StoreContents(records, list(attribute_names), attrs), staging, n_parts)
    return out
