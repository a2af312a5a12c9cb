"""Small helpers shared by the public-dataset builders: finding files, reading text/JSON/CSV, scanning.

Every problem is raised as a one-line ``ManifestError`` that names the file (and line, where the
format has lines) or, for a missing file, the path(s) where it was expected.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from data_manifests.schema import ManifestError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".mov")
MAX_ALTERNATIVES_SHOWN = 3  # keeps "not found" errors to one readable line


def check_fold(dataset: str, fold: int, folds: Sequence[int], meaning: str) -> None:
    """``fold`` must be one of ``folds``; ``meaning`` says what the folds are (for the error)."""
    if isinstance(fold, bool) or not isinstance(fold, int) or fold not in folds:
        raise ManifestError(f"{dataset} fold must be one of {list(folds)} ({meaning}), got {fold!r}")


def first_existing_file(candidates: Iterable[Path]) -> Path | None:
    for path in candidates:
        if path.is_file():
            return path
    return None


def require_file(candidates: Sequence[Path], what: str, hint: str = "") -> Path:
    """The first candidate that is a file; else a one-line error naming where it was expected."""
    found = first_existing_file(candidates)
    if found is not None:
        return found
    expected = str(candidates[0])
    others = [str(c) for c in candidates[1:]]
    if others:
        shown = others[:MAX_ALTERNATIVES_SHOWN]
        more = len(others) - len(shown)
        expected += " (or " + ", ".join(shown) + (f", and {more} more places" if more else "") + ")"
    raise ManifestError(f"{what} not found: expected {expected}{'; ' + hint if hint else ''}")


def first_existing_dir(candidates: Sequence[Path]) -> Path:
    """The first candidate folder that exists, else the first candidate (check_files reports it later)."""
    for path in candidates:
        if path.is_dir():
            return path
    return candidates[0]


def read_text(path: Path, what: str) -> str:
    """The whole file as text; UTF-8 with or without BOM (Latin-1 as a fallback for old annotation files)."""
    if not path.is_file():
        raise ManifestError(f"{what} not found: expected {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {what} {path}: {exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some dataset lists predate UTF-8; Latin-1 decodes any byte, so names survive unchanged.
        return raw.decode("latin-1")


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines; CRLF/LF and a BOM are fine."""
    text = read_text(path, what)
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def load_json(path: Path, what: str):
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from exc


def read_csv_rows(path: Path, what: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV with a header naming at least ``required`` columns.

    Header names are compared case-insensitively with surrounding spaces removed; values are stripped.
    """
    text = read_text(path, what)
    lines = text.splitlines()
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError(f"{path}: empty {what} (expected a header with columns {', '.join(required)})") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise ManifestError(f"{path}:1: header lacks column(s) {missing} (found {columns})")
    rows = []
    try:
        for values in reader:
            number = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise ManifestError(
                    f"{path}:{number}: expected {len(columns)} comma-separated values ({','.join(columns)}), "
                    f"got {len(values)}"
                )
            rows.append((number, {c: v.strip() for c, v in zip(columns, values)}))
    except csv.Error as exc:
        raise ManifestError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from exc
    return rows


def relative_posix(path: Path, root: Path) -> str:
    return PurePosixPath(*path.relative_to(root).parts).as_posix()


def scan_videos(folder: Path, suffixes: Sequence[str] = VIDEO_SUFFIXES) -> list[Path]:
    """Every video file below ``folder`` (recursive, hidden entries skipped), sorted for determinism."""
    found = []
    visited = set()  # real paths: symlinked dataset folders are followed, but a link cycle is walked once
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                found.append(Path(dirpath) / name)
    return sorted(found)


def safe_relative_path(value: str, where: str) -> str:
    """A record path from an annotation file: relative, POSIX, without '..' (it must stay under the root)."""
    rel = value.strip().replace("\\", "/")
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or re.match(r"^[A-Za-z]:", rel) or ".." in pure.parts:
        raise ManifestError(f"{where}: expected a relative path inside the dataset folder, got {value!r}")
    return pure.as_posix()
