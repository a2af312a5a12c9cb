"""The manifest schema (format ``featstore-manifest``, version 1).

A manifest is a JSONL file. Line 1 is the header; every further line is one media record::

    {"manifest": "featstore-manifest", "version": 1, "name": "synthetic", "task": "action",
     "class_names": [...], "attribute_names": [...], "root": ".", "description": "..."}
    {"video_id": "v0001", "path": "trimmed/v0001.mp4", "split": "train", "label": 3,
     "attributes": [1, 0, 0, 1], "subject": "s07", "segments": [], "fps": 25.0,
     "duration": 2.56, "n_frames": 64, "media": "video"}

``root`` is relative to the manifest file's folder (absolute paths are allowed); record paths are
relative to ``root`` and must stay inside it once ``..`` and symlinks are resolved
(``Manifest.check_paths_inside_root``; ``--allow-outside-root`` lifts this). ``label`` indexes
``class_names`` (for anomaly detection the classes are ["normal", "anomaly"]); segments are
``[start_s, end_s, label]`` in seconds; ``fps``, ``duration`` and ``n_frames`` may be null when
unknown (the extractor probes them). ``media`` is "video" or "image" (images become static clips only).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data_manifests.errors import FeatstoreError

MANIFEST_FORMAT = "featstore-manifest"
MANIFEST_VERSION = 1
SPLITS = ("train", "val", "test")
TASKS = ("action", "tad", "ad", "static")
MEDIA = ("video", "image")

_HEADER_KEYS = {"manifest", "version", "name", "task", "class_names", "attribute_names", "root", "description"}
_RECORD_KEYS = {
    "video_id", "path", "split", "label", "attributes", "subject", "segments",
    "fps", "duration", "n_frames", "media",
}


class ManifestError(FeatstoreError):
    """A manifest that cannot be used as it is (bad line, duplicate id, missing file...)."""


@dataclass(frozen=True)
class Segment:
    """An annotated interval of a video, in seconds; ``label`` indexes the header's class names."""

    start: float
    end: float
    label: int

    def to_json(self) -> list:
        return [self.start, self.end, self.label]


@dataclass
class ManifestHeader:
    name: str
    task: str
    class_names: list[str]
    attribute_names: list[str] = field(default_factory=list)
    root: str = "."
    description: str = ""
    version: int = MANIFEST_VERSION

    def to_json(self) -> dict:
        return {
            "manifest": MANIFEST_FORMAT,
            "version": self.version,
            "name": self.name,
            "task": self.task,
            "class_names": list(self.class_names),
            "attribute_names": list(self.attribute_names),
            "root": self.root,
            "description": self.description,
        }


@dataclass
class VideoRecord:
    video_id: str
    path: str
    split: str
    label: int | None = None
    attributes: list[int] | None = None
    subject: str | None = None
    segments: list[Segment] = field(default_factory=list)
    fps: float | None = None
    duration: float | None = None
    n_frames: int | None = None
    media: str = "video"

    def to_json(self) -> dict:
        record = asdict(self)
        record["segments"] = [s.to_json() for s in self.segments]
        return record


class Manifest:
    """A validated header plus records; ``root_dir`` is where record paths are resolved."""

    def __init__(self, header: ManifestHeader, records: list[VideoRecord], root_dir: Path, source: Path | None = None):
        self.header = header
        self.records = records
        self.root_dir = Path(root_dir)
        self.source = source
        self.validate_records()

    # ------------------------------------------------------------------ reading / writing
    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"manifest not found: {path}")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read manifest {path}: {exc}") from exc
        if not lines or not lines[0].strip():
            raise ManifestError(f"{path}: empty manifest (line 1 must be the header)")
        header = _parse_header(_parse_json(path, 1, lines[0]), path)
        records = []
        for number, line in enumerate(lines[1:], start=2):
            if line.strip():
                records.append(_parse_record(_parse_json(path, number, line), path, number))
        root = Path(header.root)
        root_dir = root if root.is_absolute() else (path.parent / root)
        return cls(header, records, root_dir.resolve(), source=path)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename), so a reader never sees half a manifest.

        The header's root is rewritten relative to the new file, so records still resolve to the
        same files wherever the manifest is saved.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.header.root = os.path.relpath(self.root_dir.resolve(), path.parent.resolve())
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.header.to_json()) + "\n")
            for record in self.records:
                handle.write(json.dumps(record.to_json()) + "\n")
        tmp.replace(path)
        self.source = path
        return path

    # ------------------------------------------------------------------ checks
    def validate_records(self) -> None:
        """Schema-level checks that need no file access; raises ManifestError naming the record."""
        seen: set[str] = set()
        n_classes = len(self.header.class_names)
        n_attrs = len(self.header.attribute_names)
        where = self.source or self.header.name
        for record in self.records:
            rid = record.video_id
            if rid in seen:
                raise ManifestError(f"{where}: duplicate video_id {rid!r}")
            seen.add(rid)
            if record.label is not None and not 0 <= record.label < n_classes:
                raise ManifestError(
                    f"{where}: video {rid!r} has label {record.label}, outside 0..{n_classes - 1} "
                    f"({n_classes} class names in the header)"
                )
            if record.attributes is not None:
                if len(record.attributes) != n_attrs:
                    raise ManifestError(
                        f"{where}: video {rid!r} has {len(record.attributes)} attributes, header names {n_attrs}"
                    )
                if any(a not in (0, 1) for a in record.attributes):
                    raise ManifestError(f"{where}: video {rid!r} has non-binary attributes {record.attributes}")
            for seg in record.segments:
                if not (seg.end > seg.start >= 0):
                    raise ManifestError(f"{where}: video {rid!r} has an empty or negative segment {seg.to_json()}")
                if not 0 <= seg.label < n_classes:
                    raise ManifestError(f"{where}: video {rid!r} has a segment label {seg.label} outside the classes")

    def check_files(self) -> None:
        """Every referenced file exists; one line naming how many are missing and the first one."""
        missing = [r for r in self.records if not self.resolve_path(r).is_file()]
        if missing:
            first = self.resolve_path(missing[0])
            raise ManifestError(
                f"{len(missing)} of {len(self.records)} files of dataset '{self.header.name}' are missing "
                f"under {self.root_dir} (first: {first})"
            )

    def check_paths_inside_root(self) -> None:
        """Every record path, ``..`` and symlinks resolved, stays under the resolved root.

        Record paths come from files the user did not write (a downloaded manifest, annotation files), so
        '../x', an absolute path or a symlink out of the root must not hand an arbitrary file to the decoder.
        Missing files are fine here (``check_files`` reports them); one line names the first record outside.
        """
        root = self.root_dir.resolve()
        outside = [r for r in self.records if not self._real_path(r).is_relative_to(root)]
        if outside:
            first = outside[0]
            raise ManifestError(
                f"{self.source or self.header.name}: {len(outside)} of {len(self.records)} record paths resolve "
                f"outside the data root {root} (first: video {first.video_id!r}, path {first.path!r} -> "
                f"{self._real_path(first)}); pass --allow-outside-root to read them anyway"
            )

    def _real_path(self, record: VideoRecord) -> Path:
        try:
            return self.resolve_path(record).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise ManifestError(
                f"{self.source or self.header.name}: cannot resolve the path {record.path!r} of video "
                f"{record.video_id!r}: {exc}"
            ) from exc

    # ------------------------------------------------------------------ access
    def resolve_path(self, record: VideoRecord) -> Path:
        path = Path(record.path)
        return path if path.is_absolute() else self.root_dir / path

    def split(self, name: str) -> list[VideoRecord]:
        return [r for r in self.records if r.split == name]

    def fingerprint(self) -> str:
        """SHA-256 of the header and records (not the root), identifying the dataset's content."""
        digest = hashlib.sha256()
        header = self.header.to_json()
        header.pop("root")
        digest.update(json.dumps(header, sort_keys=True).encode())
        for record in self.records:
            digest.update(json.dumps(record.to_json(), sort_keys=True).encode())
        return digest.hexdigest()


def _parse_json(path: Path, number: int, line: str) -> dict:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise ManifestError(f"{path}:{number}: expected a JSON object")
    return value


def _parse_header(raw: dict, path: Path) -> ManifestHeader:
    if raw.get("manifest") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}:1: not a {MANIFEST_FORMAT} header (missing \"manifest\": \"{MANIFEST_FORMAT}\")")
    version = raw.get("version")
    if version != MANIFEST_VERSION:
        raise ManifestError(f"{path}:1: manifest version {version!r} is not supported (this build reads {MANIFEST_VERSION})")
    unknown = set(raw) - _HEADER_KEYS
    if unknown:
        raise ManifestError(f"{path}:1: unknown header keys {sorted(unknown)}")
    for key in ("name", "task", "class_names"):
        if key not in raw:
            raise ManifestError(f"{path}:1: header lacks {key!r}")
    for key in ("class_names", "attribute_names"):
        if not isinstance(raw.get(key, []), list):
            raise ManifestError(f"{path}:1: {key!r} must be a list of names")
    if raw["task"] not in TASKS:
        raise ManifestError(f"{path}:1: task {raw['task']!r} is not one of {list(TASKS)}")
    return ManifestHeader(
        name=str(raw["name"]),
        task=raw["task"],
        class_names=[str(c) for c in raw["class_names"]],
        attribute_names=[str(a) for a in raw.get("attribute_names", [])],
        root=str(raw.get("root", ".")),
        description=str(raw.get("description", "")),
        version=version,
    )


def _parse_record(raw: dict, path: Path, number: int) -> VideoRecord:
    where = f"{path}:{number}"
    unknown = set(raw) - _RECORD_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("video_id", "path", "split"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ManifestError(f"{where}: {key!r} must be a non-empty string")
    if raw["split"] not in SPLITS:
        raise ManifestError(f"{where}: split {raw['split']!r} is not one of {list(SPLITS)}")
    media = raw.get("media", "video")
    if media not in MEDIA:
        raise ManifestError(f"{where}: media {media!r} is not one of {list(MEDIA)}")
    label = raw.get("label")
    if label is not None and (not isinstance(label, int) or isinstance(label, bool)):
        raise ManifestError(f"{where}: label must be an integer class index or null, got {label!r}")
    segments = []
    for seg in raw.get("segments") or []:
        if not (isinstance(seg, list) and len(seg) == 3 and _is_number(seg[0]) and _is_number(seg[1])
                and _as_int(seg[2]) is not None):
            raise ManifestError(f"{where}: each segment must be [start_s, end_s, integer label], got {seg!r}")
        segments.append(Segment(float(seg[0]), float(seg[1]), _as_int(seg[2])))
    fps = _optional_number(raw.get("fps"), where, "fps")
    duration = _optional_number(raw.get("duration"), where, "duration")
    n_frames = raw.get("n_frames")
    if n_frames is not None and (not isinstance(n_frames, int) or isinstance(n_frames, bool) or n_frames < 0):
        raise ManifestError(f"{where}: n_frames must be a non-negative integer or null")
    attributes = raw.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, list) or any(_as_int(a) is None for a in attributes):
            raise ManifestError(f"{where}: attributes must be a list of 0/1 or null, got {attributes!r}")
        attributes = [_as_int(a) for a in attributes]
    subject = raw.get("subject")
    return VideoRecord(
        video_id=raw["video_id"],
        path=raw["path"],
        split=raw["split"],
        label=label,
        attributes=attributes,
        subject=None if subject is None else str(subject),
        segments=segments,
        fps=fps,
        duration=duration,
        n_frames=n_frames,
        media=media,
    )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_int(value) -> int | None:
    """``value`` as an int if it is one (true/false count as 1/0, 2.0 as 2); None for 0.5, "1", null..."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _optional_number(value, where: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ManifestError(f"{where}: {key} must be a non-negative number or null, got {value!r}")
    return float(value)
