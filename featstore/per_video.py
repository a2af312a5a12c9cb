"""Per-video features in and out: the layouts other extractors and TAD projects use.

In (``import_per_video``), with a manifest that names the videos, splits, labels and segments:

- a folder of ``.npy`` files, one (T, C) array per video: ``<video_id>.npy`` (OpenTAD / ActionFormer
  downloads) or ``<stem>_<feature>.npy`` (v-iashin/video_features; ``feature`` picks one of several);
- an HDF5 file with one (T, C) dataset per video, ``f[video_id]``.

Row t is the clip covering frames [t * stride, t * stride + clip_len) at the manifest video's fps
(16-frame non-overlapping clips unless told otherwise); there are no static clips. A manifest video
without a feature array is recorded as a failure (as extraction records a video it could not decode);
an array for a video the manifest does not name, differing widths, 1-D or empty arrays and non-finite
values are refused before anything is written.

Out (``export_h5_per_video``): ``f[video_id]`` = that video's clip embeddings, float32.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest, VideoRecord
from featstore.exporters import local_output, require_local_output, staged_output, store_to_url
from featstore.h5io import check_import_target
from featstore.sampling import SamplingConfig
from featstore.store import (
    CLIP_EMBEDDINGS,
    Part,
    StagingArea,
    Store,
    StoreContents,
    VideoResult,
    write_store,
)
from featstore.summary import verify_store

IMPORT_DTYPE = "float32"  # what the per-video layouts carry and the exports write; other dtypes are cast
VIDEOS_PER_PART = 256


def load_import_manifest(dataset: str, data_root: str | Path | None = None, fold: int = 1) -> Manifest:
    """``--dataset`` as ``featstore extract`` takes it; a manifest file is read without its videos being
    present (an import needs only the names, splits, labels and segments)."""
    if dataset.endswith(".jsonl") or Path(dataset).is_file():
        return Manifest.load(dataset)
    from data_manifests.registry import resolve_dataset

    return resolve_dataset(dataset, data_root, fold)


def import_per_video(source: str | Path, manifest: Manifest, out: str | Path, sampling: SamplingConfig,
                     fps: float | None = None, feature: str | None = None, overwrite: bool = False) -> Path | str:
    """Build a store from per-video arrays (a .npy folder or a per-video .h5) through the store's writer,
    verified by ``verify``'s rules; ``fps`` is used for manifest videos that record none. An ``out`` at a
    remote fsspec URL is built in a temporary folder and copied there whole (``store_to_url``)."""
    if local_output(out) is None:
        store_to_url(str(out), overwrite,
                     lambda local: import_per_video(source, manifest, local, sampling, fps, feature))
        return str(out)
    source, out = Path(source), local_output(out)
    if source.is_dir():
        arrays, source_format = _npy_folder(source, manifest.records, feature), "npy-per-video"
    elif source.is_file():
        if feature is not None:
            raise FeatstoreError("--feature picks among <stem>_<feature>.npy files; it does not apply to an .h5")
        arrays, source_format = _h5_per_video(source), "h5-per-video"
    else:
        raise FeatstoreError(f"no such file or folder: {source}")
    check_import_target(out, overwrite)
    by_id = {r.video_id: r for r in manifest.records}
    unknown = sorted(set(arrays) - set(by_id))
    if unknown:
        raise FeatstoreError(f"{source}: features for {len(unknown)} videos the manifest does not name "
                             f"(first: {unknown[0]!r}); nothing was written")
    dim = _feature_width(source, arrays)
    no_fps = [r.video_id for r in manifest.records if r.video_id in arrays and not (r.fps or fps)]
    if no_fps:
        raise FeatstoreError(f"the manifest records no fps for {len(no_fps)} videos (first: {no_fps[0]!r}); "
                             "pass --fps to place their clips in time")
    with staged_output(out) as building:
        staging = StagingArea(building, dim, IMPORT_DTYPE)
        staging.root.mkdir()
        records = manifest.records
        n_parts = (len(records) + VIDEOS_PER_PART - 1) // VIDEOS_PER_PART
        for index in range(n_parts):
            results = [_video_result(r, arrays, sampling, fps, source)
                       for r in records[index * VIDEOS_PER_PART:(index + 1) * VIDEOS_PER_PART]]
            staging.save_part(Part(index, results, {"imported_from": str(source)}))
        attrs = {
            "config": {"sampling": sampling.to_json()},
            # "encoder" / "weights" / "sampling" as extraction records them, so `info` names the source
            "provenance": {"encoder": "imported", "weights": str(source.resolve()), "sampling": sampling.to_json(),
                           "imported": {"source": str(source.resolve()), "format": source_format,
                                        "feature": feature, "fps_default": fps},
                           "command": " ".join(sys.argv)},
            "dataset": {"header": manifest.header.to_json(), "fingerprint": manifest.fingerprint(),
                        "source": str(manifest.source) if manifest.source else None, "n_videos": len(records)},
        }
        write_store(building, StoreContents(records, list(manifest.header.attribute_names), attrs), staging, n_parts)
        staging.remove()
        problems = verify_store(building)  # what was written, by verify's rules
        if problems:
            raise FeatstoreError(f"the store imported from {source} fails verify: {problems[0]}; nothing was written")
    return out


def _video_result(record: VideoRecord, arrays: dict, sampling: SamplingConfig, fps: float | None,
                  source: Path) -> VideoResult:
    if record.video_id not in arrays:
        return VideoResult(record.video_id, failed_reason=f"no feature array in {source}")
    embeddings = np.asarray(arrays[record.video_id], dtype=IMPORT_DTYPE)
    video_fps = float(record.fps or fps)
    starts = np.arange(len(embeddings), dtype=np.int64) * sampling.effective_stride
    frames = np.stack([starts, starts + sampling.clip_len], axis=1)
    n_frames = record.n_frames or int(frames[-1, 1])
    return VideoResult(
        video_id=record.video_id, decoder="imported", n_frames=int(n_frames), fps=video_fps,
        duration=float(record.duration or n_frames / video_fps),
        clip_embeddings=embeddings, clip_frames=frames, clip_times=frames / video_fps,
        static_embeddings=np.zeros((0, embeddings.shape[1]), dtype=IMPORT_DTYPE),
        static_frames=np.zeros(0, dtype=np.int64),
    )


def _feature_width(source: Path, arrays: dict) -> int:
    """C of the videos' (T, C) arrays; one line for the first array that cannot be a video's clip features."""
    for video_id, array in arrays.items():
        if array.dtype.kind not in "fiu":
            raise FeatstoreError(f"{source}: the features of {video_id!r} are {array.dtype}, not numbers; "
                                 "nothing was written")
        if array.ndim != 2 or array.shape[0] == 0:
            raise FeatstoreError(f"{source}: the features of {video_id!r} have shape {array.shape}; each video needs "
                                 "a (T, C) array of clip features with T >= 1; nothing was written")
        if not np.isfinite(array).all():
            raise FeatstoreError(f"{source}: the features of {video_id!r} hold NaN or Inf; nothing was written")
    dims = {array.shape[1] for array in arrays.values()}
    if len(dims) > 1:
        by_dim = {array.shape[1]: video_id for video_id, array in arrays.items()}
        examples = ", ".join(f"{v!r} is {d} wide" for d, v in sorted(by_dim.items()))
        raise FeatstoreError(f"{source}: the videos' features differ in width ({examples}); nothing was written")
    return dims.pop()


def _npy_folder(folder: Path, records: list[VideoRecord], feature: str | None) -> dict[str, np.ndarray]:
    """video_id -> array. A file is a video's when its name is ``<video_id>.npy``, or ``<key>_<feature>.npy``
    with key the video id or its file's stem (video_features names outputs after the video file)."""
    keys = {r.video_id: r.video_id for r in records}
    keys.update({Path(r.path).stem: r.video_id for r in records if Path(r.path).stem not in keys})
    suffix = f"_{feature}" if feature else None
    arrays, names = {}, {}
    for path in sorted(folder.glob("*.npy")):
        stem = path.stem
        if suffix is not None:
            if not stem.endswith(suffix):
                continue
            key = stem[: -len(suffix)]
        elif stem in keys:
            key = stem
        else:
            key = stem.rpartition("_")[0]
        video_id = keys.get(key, stem)
        if video_id in names:
            raise FeatstoreError(f"{folder}: both {names[video_id]} and {path.name} hold features of {video_id!r}; "
                                 "pass --feature NAME to pick <stem>_NAME.npy")
        names[video_id] = path.name
        try:
            arrays[video_id] = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise FeatstoreError(f"{path} is not a readable .npy array ({exc})") from exc
    if not arrays:
        raise FeatstoreError(f"{folder} holds no {'*' + suffix if suffix else '*'}.npy feature files")
    return arrays


def _h5_per_video(path: Path) -> dict[str, np.ndarray]:
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise FeatstoreError(f"{path} is not a readable HDF5 file") from exc
    arrays = {}
    with handle:
        def collect(name: str, item) -> None:
            if isinstance(item, h5py.Dataset):
                arrays[name] = item[...]

        handle.visititems(collect)
    if not arrays:
        raise FeatstoreError(f"{path} holds no datasets (the per-video layout is f[video_id] -> (T, C))")
    return arrays


def export_h5_per_video(store_path: str | Path, out: str | Path) -> Path:
    """``f[video_id]`` = that video's clip embeddings (float32), for the videos that have clips; ``out`` is a
    local file (``exporters.export`` also copies it to a URL)."""
    out = require_local_output(out, "export_h5_per_video's file is written on this machine")
    if out.is_dir():
        raise FeatstoreError(f"{out} is a folder; the h5-per-video export writes one file")
    store = Store.open(store_path)
    offsets = store.clip_offsets()
    embeddings = store.group[CLIP_EMBEDDINGS]
    with staged_output(out, single_file=True) as staging, h5py.File(staging, "w") as handle:
        for v, video_id in enumerate(store.videos().video_id.tolist()):
            if offsets[v + 1] > offsets[v]:
                handle.create_dataset(video_id, data=np.asarray(embeddings[offsets[v] : offsets[v + 1]], np.float32))
    return out
