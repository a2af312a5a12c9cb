"""Per-video exports that feed other tools' original code unchanged.

``opentad`` (OpenTAD / ActionFormer / TriDet feature layout)::

    OUT/features/<video_id>.npy    (T, C) float32, one row per clip in time order
    OUT/features/missing_files.txt OpenTAD's ``block_list``: the store's videos without clips (no .npy)
    OUT/annotations.json           {"database": {video_id: {"subset", "duration", "fps", "frame",
                                     "annotations": [{"segment": [start_s, end_s], "label", "label_id"}]}}}
    OUT/category_idx.txt           OpenTAD's ``class_map``: one class name per line, line i = label_id i
    OUT/config_hint.yaml           the values ActionFormer's / TriDet's ``configs/thumos_i3d.yaml`` take
    OUT/export_info.json           feat_stride / num_frames (ActionFormer), feature_stride / offset_frames
                                   (OpenTAD), input_dim, num_classes, subset names, warnings

  Store splits become subsets under OpenTAD's THUMOS names (``OPENTAD_SUBSET_NAMES``: train -> training,
  test -> validation, the names its THUMOS configs train and evaluate on); ``subset_names`` overrides them.
  Those tools map seconds to feature index as ``(t * fps - num_frames / 2) / feat_stride``. That holds
  for stores whose clips start at frame 0 and follow each other every ``stride`` frames at the recorded
  fps; ``export_info.json`` says whether this store does (``grid_matches_formula``).

``mgfn`` (MGFN / RTFM UCF-Crime layout)::

    OUT/features/<video_id>.npy    (T, crops, C) float32; crops 1 by default (the store has one view);
                                   ``crops`` > 1 repeats that view (copies: no extra information)
    OUT/train.list                 absolute paths, anomalous training videos first, then normal ones
    OUT/test.list                  absolute paths of the test videos
    OUT/gt.npy                     frame-level 0/1 ground truth of the test list, clip_len frames per snippet
    OUT/export_info.json           n_anomalous_train (MGFN's dataset.py hard-codes 810), feature size, crops,
                                   the edits MGFN's model needs for this export

``h5`` and ``h5-per-video`` write one file: a local path, or any fsspec URL (``export`` writes it to a local
temporary file and copies it there whole). ``opentad`` and ``mgfn`` write folders whose lists and configs
name their files by local path, so their OUT is local (a path or a ``file://`` URL).

An existing non-empty OUT is refused. Every writer of an output here (and ``featstore import``,
``anonymize export``) builds it in a staging sibling ``<OUT>.partial-<pid>`` and renames it to OUT
only when it is whole (``staged_output``): a failure removes the staging, and what a killed run left
is removed by the next writer of OUT once its process is gone, so a rerun never trips on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from data_manifests.errors import FeatstoreError
from featstore.export_defaults import MGFN_DEFAULT_CROPS, OPENTAD_SUBSET_NAMES
from featstore.store import CLIP_FRAMES, CLIP_TIMES, ROOT_METADATA, STAGING_DIR, Location, Store, has_staged_run
from featstore.store.location import is_url

T = TypeVar("T")

EXPORT_FORMATS = ("h5", "h5-per-video", "opentad", "mgfn")
# ActionFormer's / TriDet's THUMOS dataset drops this label_id from training and predicts nothing for it
# (THUMOS's CliffDiving, which is also annotated as Diving).
ACTIONFORMER_SKIPPED_LABEL_ID = 4
MGFN_CHANNELS = 2048  # MGFN's model slices x[:, :2048] as features and feeds them to Conv1d(2048, ...)
MGFN_CROPS = 10  # MGFN's MSNSD takes the first batch_size * 10 rows as the normal videos' crops


def _safe_name(video_id: str) -> str:
    if not video_id or video_id in (".", "..") or "/" in video_id or "\\" in video_id or "\0" in video_id:
        raise FeatstoreError(f"video id {video_id!r} cannot be used as a file name")
    return video_id


# ---------------------------------------------------------------------------------------------- staged writing
STAGING_MARK = ".partial-"
REPLACED_SUFFIX = ".replaced"


def staging_path(out: Path) -> Path:
    """Where this process builds ``out``: ``<out>.partial-<pid>``, next to it (a rename stays on one disk)."""
    return out.with_name(f"{out.name}{STAGING_MARK}{os.getpid()}")


def staging_target(path: Path) -> tuple[Path, int] | None:
    """(the output, the writer's pid) when ``path`` is a staging sibling, else None."""
    match = re.fullmatch(r"(.+)" + re.escape(STAGING_MARK) + r"(\d+)(?:" + re.escape(REPLACED_SUFFIX) + ")?", path.name)
    return (path.with_name(match.group(1)), int(match.group(2))) if match else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def leftover_staging(out: Path) -> list[Path]:
    """What killed writers of ``out`` left: staging siblings whose process no longer runs on this machine
    (one named after this process's pid is an earlier process's that had the same pid)."""
    if not out.parent.is_dir():
        return []
    leftovers = []
    for path in out.parent.iterdir():
        staged = staging_target(path)
        if staged is not None and staged[0] == out and (staged[1] == os.getpid() or not _process_alive(staged[1])):
            leftovers.append(path)
    return sorted(leftovers)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def staged_output(out: Path, single_file: bool = False) -> Iterator[Path]:
    """Yield a staging path to write ``out`` into; rename it to ``out`` when the block ends, remove it
    when the block raises.

    The staging (a folder, or a file with ``single_file``) is created before anything else, so an
    unwritable ``out`` is refused at once. An existing ``out`` (the caller has allowed replacing it)
    is replaced only once the new one is whole; a non-empty folder goes aside first, as no rename
    replaces one.
    """
    out = Path(out)
    for leftover in leftover_staging(out):
        _remove(leftover)
    staging = staging_path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if single_file:
            staging.touch(exist_ok=False)
        else:
            staging.mkdir()
    except OSError as exc:
        raise FeatstoreError(f"cannot create {out}: {exc.strerror or exc}") from exc
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    if single_file or not out.is_dir() or not any(out.iterdir()):
        os.replace(staging, out)
    else:
        aside = staging.with_name(staging.name + REPLACED_SUFFIX)
        os.replace(out, aside)
        os.replace(staging, out)
        _remove(aside)


# ---------------------------------------------------------------------------------------------- where outputs go
def _url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
        raise FeatstoreError(f"cannot open {url}: {exc}") from exc


def local_output(out: str | Path) -> Path | None:
    """``out`` as a local path: a plain path, or a ``file://`` URL's path; None for any other fsspec URL."""
    if not is_url(out):
        return Path(out)
    fs, path = _url_to_fs(str(out))
    return Path(path) if isinstance(fs, LocalFileSystem) else None


def require_local_output(out: str | Path, why_local: str) -> Path:
    """``local_output``, refusing a remote URL with a one-line error that says ``why_local`` it must be local."""
    local = local_output(out)
    if local is None:
        raise FeatstoreError(f"{why_local}: give a local path or a file:// URL, not {out}")
    return local


def store_to_url(url: str, overwrite: bool, build: Callable[[Path], T]) -> T:
    """A store built by ``build(local path)`` in a temporary folder (``TMPDIR``), then copied to the fsspec ``url``,
    its root metadata (which marks a store whole) last; a store already there is replaced only with ``overwrite``.
    Returns what ``build`` returned."""
    location = Location(url)
    if location.exists() and not location.is_empty_folder() and not overwrite:
        raise FeatstoreError(f"{url} already exists (pass --overwrite to replace it)")
    with tempfile.TemporaryDirectory(prefix="featstore-store-") as folder:
        built = Path(folder) / "store.zarr"
        result = build(built)
        if location.exists():
            location.remove_tree()
        location.upload_folder(built, last=ROOT_METADATA)
    return result


def upload_one_file(url: str, write: Callable[[Path], object]) -> str:
    """Write a one-file output with ``write(local_path)`` into a temporary folder (``TMPDIR``), then copy it to
    the fsspec ``url``: to a temporary name first, moved to ``url`` once whole, so nobody reads half a file."""
    fs, key = _url_to_fs(url)
    if fs.isdir(key):
        raise FeatstoreError(f"{url} is a folder; this export writes one file")
    partial = f"{key}{STAGING_MARK}{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="featstore-export-") as folder:
        local = Path(folder) / key.rstrip("/").rsplit("/", 1)[-1]
        write(local)
        try:
            fs.put_file(str(local), partial)
            fs.mv(partial, key)
        except OSError as exc:
            raise FeatstoreError(f"cannot write {url}: {exc}") from exc
        finally:
            if fs.exists(partial):
                fs.rm_file(partial)
    return url


def interrupted_writer(path: str | Path) -> str | None:
    """The command whose interrupted run left ``path`` unfinished, when it is not an extraction:
    "anonymize export" or "featstore import" (else None).

    ``write_transformed_store`` (``anonymize export``) marks its output complete last and uses no
    ``_staging/`` folder; ``featstore import`` stages parts without the ``run.json`` of an extraction.
    """
    location = Location(path)
    if location.is_url or not location.exists():
        return None
    try:
        state = Store.open(path, require_complete=False).format_record.get("state")
    except FeatstoreError:  # no store attributes written yet
        state = None
    if state not in (None, "complete") and not location.exists(STAGING_DIR):
        return "anonymize export"
    if location.exists(STAGING_DIR) and not has_staged_run(location):
        return "featstore import"
    return None


# ---------------------------------------------------------------------------------------------- exports
# What an export repeats of an anonymized store's provenance.anonymizer (``anonymize export`` writes it)
def write_export_info(folder: Path, store: Store, info: dict) -> None:
    """Write ``folder/export_info.json``: ``info`` plus the anonymizer record, so an anonymized export says so."""
    record = dict(info, anonymizer=store.anonymizer_record())
    (folder / "export_info.json").write_text(json.dumps(record, indent=2) + "\n")


def _check_out_folder(out: Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FeatstoreError(f"{out} already exists and is not an empty folder; choose another --out")
    return out


def _videos_with_clips(store: Store) -> np.ndarray:
    return np.flatnonzero(np.diff(store.clip_offsets()) > 0)


def feature_grid_info(store: Store) -> dict:
    """The stride / clip length / fps a tool needs, and whether clip g really covers frames
    [g * stride, g * stride + clip_len) of every video (the tools' seconds <-> index formula)."""
    sampling = store.sampling
    clip_len = int(sampling.get("clip_len", 16))
    stride = int(sampling.get("stride") or clip_len)
    frames = store.array(CLIP_FRAMES)
    offsets = store.clip_offsets()
    matches = True
    for v in _videos_with_clips(store).tolist():
        rows = frames[offsets[v]:offsets[v + 1]]
        expected = np.arange(len(rows)) * stride
        if not (np.array_equal(rows[:, 0], expected) and np.all(rows[:, 1] - rows[:, 0] == clip_len)):
            matches = False
            break
    return {"feat_stride": stride, "num_frames": clip_len, "resampled_fps": sampling.get("fps"),
            "grid_matches_formula": bool(matches and sampling.get("fps") is None)}


def parse_subset_names(text: str) -> dict[str, str]:
    """``"train=training,test=validation"`` -> {"train": "training", "test": "validation"}."""
    names = {}
    for item in text.split(","):
        split, sep, subset = (part.strip() for part in item.partition("="))
        if not sep or not split or not subset:
            raise FeatstoreError(f"--subset-names takes SPLIT=NAME pairs separated by commas "
                                 f"(e.g. train=training,test=validation), got {text!r}")
        if split in names:
            raise FeatstoreError(f"--subset-names names split {split!r} twice")
        names[split] = subset
    return names


def _subset_names(store: Store, video_indices: list[int], subset_names: dict[str, str]) -> dict[str, str]:
    """The subset name of each split the exported videos are in; refuses what OpenTAD would misread."""
    splits = sorted({str(s) for s in store.videos().split[video_indices]})
    unnamed = [s for s in splits if s not in subset_names]
    if unnamed:
        raise FeatstoreError(f"{store.path}: split(s) {', '.join(unnamed)} have no subset name; give every split "
                             f"one, e.g. --subset-names {','.join(f'{s}={subset_names.get(s, s)}' for s in splits)}")
    used = {s: subset_names[s] for s in splits}
    for a in splits:
        for b in splits:
            # OpenTAD selects a video when its subset is a substring of the config's subset_name
            if a != b and used[a] in used[b]:
                raise FeatstoreError(f"subset names {used[a]!r} ({a}) and {used[b]!r} ({b}) would be read as one "
                                     f"subset by OpenTAD (it matches subset names by substring); choose other names")
    return used


def _class_names(header_names: list[str], label_ids: set[int]) -> list[str]:
    """Name of every class id up to the largest one used (the id's number where the store has no name)."""
    size = max([len(header_names), *(i + 1 for i in label_ids)], default=0)
    return [header_names[i] if i < len(header_names) else str(i) for i in range(size)]


def _actionformer_warnings(present: list[int], grid: dict) -> list[str]:
    warnings = []
    if present != list(range(len(present))):
        warnings.append(f"the label ids present ({present}) are not 0..{len(present) - 1}: ActionFormer/TriDet "
                        f"need num_classes = the number of labels present and every label_id below it")
    if ACTIONFORMER_SKIPPED_LABEL_ID in present:
        warnings.append(f"ActionFormer/TriDet's thumos dataset drops label_id {ACTIONFORMER_SKIPPED_LABEL_ID} "
                        f"(THUMOS CliffDiving) from training and predicts nothing for it")
    if not grid["grid_matches_formula"]:
        warnings.append("the clips are not on the tools' grid (clip g covering frames [g*stride, g*stride + "
                        "clip_len) at the recorded fps): their seconds <-> feature index mapping is off")
    return warnings


def _yaml_lines(values: dict) -> str:
    """YAML for a config snippet: JSON values are YAML flow values, so no YAML library is needed."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items())


def export_opentad(store_path: str | Path, out: str | Path, subset_names: dict[str, str] | None = None) -> Path:
    out = _check_out_folder(require_local_output(
        out, "the opentad export (a folder its configs name by path) is written on this machine"))
    with staged_output(out) as staging:
        _write_opentad(Store.open(store_path), staging, out.resolve(),
                       OPENTAD_SUBSET_NAMES if subset_names is None else subset_names)
    return out


def _write_opentad(store: Store, staging: Path, out: Path, subset_names: dict[str, str]) -> None:
    """Write the layout into ``staging``; config_hint.yaml and export_info.json name the files under ``out``."""
    table = store.videos()
    offsets = store.clip_offsets()
    grid = feature_grid_info(store)
    resampled_fps = grid["resampled_fps"]
    exported = _videos_with_clips(store).tolist()
    subsets = _subset_names(store, exported, subset_names)
    label_ids = set()
    for v in exported:
        for label in table.segments[v][:, 2].astype(int).tolist():
            if label < 0:
                raise FeatstoreError(f"{store.path}: video {table.video_id[v]} has a segment of label {label}, "
                                     f"not a class id")
            label_ids.add(label)
    class_names = _class_names(store.class_names, label_ids)
    (staging / "features").mkdir()
    database = {}
    for v in exported:
        name = _safe_name(str(table.video_id[v]))
        np.save(staging / "features" / f"{name}.npy",
                np.asarray(store.clip_embeddings[offsets[v]:offsets[v + 1]], dtype=np.float32))
        fps = float(resampled_fps or table.fps[v])
        duration = float(table.duration[v])
        annotations = [{"segment": [float(start), float(end)], "label": class_names[int(label)], "label_id": int(label)}
                       for start, end, label in table.segments[v].tolist()]
        # OpenTAD takes fps as frame / duration and the frame of second t as t / duration * frame
        database[name] = {"subset": subsets[str(table.split[v])], "duration": duration, "fps": fps,
                          "frame": int(round(fps * duration)), "annotations": annotations}
    missing = [str(table.video_id[v]) for v in sorted(set(range(store.n_videos)) - set(exported))]
    (staging / "features" / "missing_files.txt").write_text("".join(f"{video_id}\n" for video_id in missing))
    annotation = {"version": "featstore-opentad-2", "database": database}
    (staging / "annotations.json").write_text(json.dumps(annotation) + "\n")
    (staging / "category_idx.txt").write_text("".join(f"{name}\n" for name in class_names))

    present = sorted(label_ids)
    train_subsets = [subsets[s] for s in ("train",) if s in subsets]
    eval_subsets = [subsets[s] for s in ("test",) if s in subsets] or [subsets[s] for s in ("val",) if s in subsets]
    actionformer = {
        "dataset_name": "thumos",
        "train_split": [name.lower() for name in train_subsets],  # the loader lowercases the json's subset
        "val_split": [name.lower() for name in eval_subsets],
        "dataset": {"json_file": str(out / "annotations.json"), "feat_folder": str(out / "features"),
                    "file_prefix": None, "file_ext": ".npy", "num_classes": len(present), "input_dim": store.dim,
                    "feat_stride": grid["feat_stride"], "num_frames": grid["num_frames"],
                    # None: each video's own fps from the json; a resampled store has one fps for all
                    "default_fps": resampled_fps, "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0],
                    "max_seq_len": 2304},
        # the stock THUMOS test_cfg fuses an external THUMOS score file; our labels need the plain multiclass NMS
        "test_cfg": {"multiclass_nms": True, "ext_score_file": None},
    }
    warnings = _actionformer_warnings(present, grid)
    (staging / "config_hint.yaml").write_text(
        "# ActionFormer / TriDet: put these into configs/thumos_i3d.yaml (keys not named here keep their values)\n"
        + "".join(f"# warning: {warning}\n" for warning in warnings) + _yaml_lines(actionformer))
    half_clip = grid["num_frames"] / 2
    opentad = {"ann_file": str(out / "annotations.json"), "class_map": str(out / "category_idx.txt"),
               "data_path": str(out / "features") + "/", "block_list": str(out / "features" / "missing_files.txt"),
               "subset_name": subsets, "feature_stride": grid["feat_stride"], "sample_stride": 1,
               # OpenTAD truncates a fractional offset (odd clip lengths) to whole frames
               "offset_frames": int(half_clip) if half_clip.is_integer() else half_clip}
    info = {"format": "opentad", "store": str(store.path), "n_videos": len(database), "input_dim": store.dim,
            "num_classes": len(class_names), "class_names": class_names, "label_ids_present": present,
            "feature_dtype": "float32", "subsets": subsets, "splits": sorted(subsets),
            **grid, "feature_stride": opentad["feature_stride"], "offset_frames": opentad["offset_frames"],
            "opentad": opentad, "actionformer": actionformer, "warnings": warnings}
    write_export_info(staging, store, info)


def frame_ground_truth(clip_times: np.ndarray, intervals: np.ndarray, frames_per_snippet: int = 16) -> np.ndarray:
    """(n_snippets * frames_per_snippet,) 0/1 frame labels of one video (the UCF-Crime convention).

    Frame slot j of a snippet spanning [start, end) seconds sits at ``start + j * (end - start) /
    frames_per_snippet``; it is anomalous when that time lies in an interval ``[seg_start, seg_end)`` of
    ``intervals`` (m, >= 2; extra columns such as a label are ignored). For clips of consecutive frames at
    the video's fps this is exactly "frame f is anomalous when seg_start * fps <= f < seg_end * fps".
    """
    clip_times = np.asarray(clip_times, dtype=np.float64).reshape(-1, 2)
    intervals = np.asarray(intervals, dtype=np.float64)
    intervals = intervals.reshape(-1, 2) if intervals.ndim == 1 else intervals
    slots = np.arange(frames_per_snippet) / frames_per_snippet
    times = (clip_times[:, :1] + slots[None, :] * (clip_times[:, 1:2] - clip_times[:, :1])).reshape(-1)
    labels = np.zeros(len(times), dtype=np.int64)
    for start, end in intervals[:, :2]:
        # 1e-9 s absorbs the float rounding of frame / fps at interval edges
        labels |= ((times >= start - 1e-9) & (times < end - 1e-9)).astype(np.int64)
    return labels


def _mgfn_model_notes(feature_size: int, crops: int) -> list[str]:
    """The edits MGFN's released model (models/mgfn.py) needs to train on this export."""
    notes = []
    if feature_size != MGFN_CHANNELS:
        notes.append(f"MGFN's model hard-codes {MGFN_CHANNELS} feature channels (the x[:, :{MGFN_CHANNELS}] slice "
                     f"and channels={MGFN_CHANNELS} of to_tokens); set both to {feature_size}")
    if crops != MGFN_CROPS:
        notes.append(f"MGFN's MSNSD splits normal / abnormal rows at batch_size * {MGFN_CROPS}; for training "
                     f"with {crops} crop(s) write batch_size * ncrops (testing runs as is), or export with "
                     f"--crops {MGFN_CROPS} (copies of the one view)")
    return notes


def export_mgfn(store_path: str | Path, out: str | Path, crops: int = MGFN_DEFAULT_CROPS,
                train_split: str = "train", test_split: str = "test") -> Path:
    if crops < 1:
        raise FeatstoreError(f"crops must be >= 1, got {crops}")
    out = _check_out_folder(require_local_output(
        out, "the mgfn export (a folder its lists name by path) is written on this machine"))
    with staged_output(out) as staging:
        _write_mgfn(Store.open(store_path), staging, out.resolve(), crops, train_split, test_split)
    return out


def _write_mgfn(store: Store, staging: Path, out: Path, crops: int, train_split: str, test_split: str) -> None:
    """Write the layout into ``staging``; the lists name the files at their final place under ``out``."""
    table = store.videos()
    grid = feature_grid_info(store)
    if grid["feat_stride"] != grid["num_frames"]:
        raise FeatstoreError(f"{store.path}: the MGFN layout needs non-overlapping snippets (stride = clip length); "
                             f"this store has clip length {grid['num_frames']} and stride {grid['feat_stride']}")
    labels = table.label
    offsets = store.clip_offsets()
    times = store.array(CLIP_TIMES)
    with_clips = set(_videos_with_clips(store).tolist())
    train = [v for v in store.split_indices(train_split).tolist() if v in with_clips]
    test = [v for v in store.split_indices(test_split).tolist() if v in with_clips]
    for v in train + test:
        if labels[v] not in (0, 1):
            raise FeatstoreError(f"{store.path}: the MGFN layout needs labels 0 (normal) / 1 (anomalous); "
                                 f"video {table.video_id[v]} has {labels[v]}")
    (staging / "features").mkdir()
    paths = {}
    for v in train + test:
        name = _safe_name(str(table.video_id[v]))
        values = np.asarray(store.clip_embeddings[offsets[v]:offsets[v + 1]], dtype=np.float32)
        np.save(staging / "features" / f"{name}.npy", np.repeat(values[:, None, :], crops, axis=1))
        paths[v] = str(out / "features" / f"{name}.npy")
    anomalous_first = [v for v in train if labels[v] == 1] + [v for v in train if labels[v] == 0]
    (staging / "train.list").write_text("".join(f"{paths[v]}\n" for v in anomalous_first))
    (staging / "test.list").write_text("".join(f"{paths[v]}\n" for v in test))
    truth = [frame_ground_truth(times[offsets[v]:offsets[v + 1]], table.segments[v], grid["num_frames"]) for v in test]
    np.save(staging / "gt.npy", np.concatenate(truth).astype(np.float64) if truth else np.zeros(0))
    info = {"format": "mgfn", "store": str(store.path), "feature_size": store.dim, "crops": crops,
            "crops_note": (f"the store holds one view; the {crops} crops are copies of it (no extra information)"
                           if crops > 1 else "the store holds one view: one crop, (T, 1, C)"),
            "model_notes": _mgfn_model_notes(store.dim, crops),
            "n_anomalous_train": int(sum(labels[v] == 1 for v in train)),
            "n_normal_train": int(sum(labels[v] == 0 for v in train)),
            "n_test": len(test), "frames_per_snippet": grid["num_frames"], "gt_frames": int(sum(len(t) for t in truth))}
    write_export_info(staging, store, info)


def export(store_path: str | Path, out: str | Path, format: str, crops: int | None = None,
           subset_names: dict[str, str] | None = None) -> Path | str:
    """Dispatch on ``format`` (``h5`` and ``h5-per-video`` write one file; the others a folder). ``crops`` is
    for ``mgfn`` only, ``subset_names`` for ``opentad`` only. Returns where the export is: a local path, or
    the URL a one-file export was copied to."""
    if format not in EXPORT_FORMATS:
        raise FeatstoreError(f"unknown export format {format!r} (available: {', '.join(EXPORT_FORMATS)})")
    if crops is not None and format != "mgfn":
        raise FeatstoreError(f"--crops is for --format mgfn, not {format}")
    if subset_names is not None and format != "opentad":
        raise FeatstoreError(f"--subset-names is for --format opentad, not {format}")
    if format == "opentad":
        return export_opentad(store_path, out, subset_names=subset_names)
    if format == "mgfn":
        return export_mgfn(store_path, out, crops=MGFN_DEFAULT_CROPS if crops is None else crops)
    if format == "h5":
        from featstore.h5io import export_h5 as export_one_file
    else:
        from featstore.per_video import export_h5_per_video as export_one_file
    local = local_output(out)
    if local is None:
        return upload_one_file(str(out), lambda path: export_one_file(store_path, path))
    return export_one_file(store_path, local)
