"""Result files: every protocol run ends in ``<out>/<name>.json`` (protocol, config, metrics, the stores
evaluated and their provenance), written whole or not at all."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from data_manifests.errors import FeatstoreError
from evaluate.options import default_out_dir
from evaluate.tables import console, err_console, print_metrics
from featstore.store import Store, utc_now

# attributes every store has; anything else at the top level (e.g. an anonymizer's record) is shown in results
STANDARD_STORE_ATTRS = ("featstore", "identity", "config", "provenance", "dataset", "failures")


def json_safe(value):
    """Plain JSON types: nan/inf -> None, numpy scalars/arrays -> Python, dataclasses -> dicts."""
    if is_dataclass(value) and not isinstance(value, type):
        return json_safe(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def store_summary(store: Store) -> dict:
    """The provenance facts a reader of a result needs to know which features were evaluated."""
    provenance = store.provenance
    summary = {
        "path": str(store.path),
        "dataset": store.dataset_name,
        "task": store.task,
        "encoder": provenance.get("encoder"),
        "weights": provenance.get("weights"),
        "weights_sha256": provenance.get("weights_sha256"),
        "dim": store.dim,
        "dtype": str(store.clip_embeddings.dtype),
        "n_videos": store.n_videos,
        "finalized": store.finalized,
    }
    if store.anonymizer:  # an exported store records what made it inside its provenance, not at the top level
        summary["anonymizer"] = store.anonymizer_record(("run", "aam_sha256", "epoch", "source_store"))
    # anything else at the top level (for example what made an anonymized copy) is kept as it is
    for key, value in store.attrs.items():
        if key not in STANDARD_STORE_ATTRS:
            summary[key] = value
    return summary


def result_document(name: str, config, metrics: dict, store: Store | Mapping[str, Store] | None = None) -> dict:
    """The result of a run: protocol, config, metrics, store(s) and their provenance, in plain JSON types.

    ``store`` is one store or ``{role: store}`` for protocols that read several (e.g. raw and anonymized).
    """
    if isinstance(store, Store):
        store_path, provenance = str(store.path), store_summary(store)
    elif store is None:
        store_path, provenance = None, None
    else:
        store_path = {role: str(s.path) for role, s in store.items()}
        provenance = {role: store_summary(s) for role, s in store.items()}
    return {
        "protocol": name,
        "config": json_safe(config),
        "metrics": json_safe(metrics),
        "store": store_path,
        "store_provenance": json_safe(provenance),
        "finished": utc_now(),
    }


def as_json_text(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def write_result(out_dir: Path, name: str, document: dict) -> Path:
    """Write ``document`` to ``<out_dir>/<name>.json``, through a temporary file renamed, so a result file is
    always whole."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FeatstoreError(f"--out {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(as_json_text(document))
    tmp.replace(path)
    return path


def save_result(out_dir: Path, name: str, config, metrics: dict,
                store: Store | Mapping[str, Store] | None = None) -> Path:
    """Write ``<out_dir>/<name>.json`` (``result_document``)."""
    return write_result(out_dir, name, result_document(name, config, metrics, store))


def load_result(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FeatstoreError(f"cannot read result file {path}: {exc}") from exc


def finish(name: str, config, metrics: dict, store: Store | Mapping[str, Store], out: Optional[Path],
           printer: Callable[[], None] | None = None, as_json: bool = False) -> Path:
    """The end of every subcommand: write the JSON result, print the metrics table and the path.

    ``printer`` replaces the default flattened metrics table (e.g. an attributes x attackers table). ``as_json``
    prints the result document written instead, and nothing else on stdout (the path goes to stderr), for scripts.
    """
    first = store if isinstance(store, Store) else next(iter(store.values()))
    document = result_document(name, config, metrics, store)
    path = write_result(out if out is not None else default_out_dir(first.path), name, document)
    if as_json:
        sys.stdout.write(as_json_text(document))
        err_console.print(f"wrote {path}")
        return path
    if printer is None:
        print_metrics(f"{name}: {first.path}", metrics)
    else:
        printer()
    console.print(f"wrote {path}")
    return path
