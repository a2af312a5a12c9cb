"""Setup shared by every evaluation protocol: store data as tensors, the seeded head-training loop,
result files and terminal tables.

Every protocol module (``evaluate/protocols/<name>.py``) has the same shape: a ``<Name>Config``
dataclass validated in ``__post_init__``, ``run(store, config) -> dict`` (the metrics) and
``register(app)`` that adds its CLI subcommand, which ends with :func:`finish` (JSON + table).

Data stay tensors on the compute device from loading to the end; an epoch is a shuffled index
tensor cut into batches (no per-sample Python loops). On a GPU the stored dtype (float16 for most
stores) is kept in memory and cast to float32 one batch at a time, which halves the memory of big
stores; on the CPU the rows are cast to float32 once at load (CPU float16 gathers are slow).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from featstore.device import resolve_device
from data_manifests.errors import FeatstoreError
from featstore.store import PRIVATE_COLUMNS, Store, VideoTable, utc_now

DEFAULT_OUT_ROOT = Path("runs/eval")
PREDICT_BATCH = 8192
# attributes every store has; anything else at the top level (e.g. an anonymizer's record) is shown in results
STANDARD_STORE_ATTRS = ("featstore", "identity", "config", "provenance", "dataset", "failures")

console = Console()
err_console = Console(stderr=True)


# ---------------------------------------------------------------------------------------------- configs
def check(condition: bool, message: str) -> None:
    """Config validation: one-line user error when ``condition`` does not hold."""
    if not condition:
        raise FeatstoreError(message)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    check(value in choices, f"{name} must be one of {list(choices)}, got {value!r}")


def check_training(epochs: int, lr: float, batch_size: int, weight_decay: float = 0.0) -> None:
    check(epochs >= 1, f"epochs must be >= 1, got {epochs}")
    check(lr > 0 and math.isfinite(lr), f"lr must be a positive number, got {lr}")
    check(batch_size >= 1, f"batch_size must be >= 1, got {batch_size}")
    check(weight_decay >= 0, f"weight_decay must be >= 0, got {weight_decay}")


# ---------------------------------------------------------------------------------------------- store data
def check_private_labels(store: Store, labels_from: str | Path | None) -> None:
    """A protocol reading attributes or subjects of an export that dropped them needs their raw store."""
    if labels_from is None and store.private_labels_dropped:
        raise FeatstoreError(f"{store.path} was exported without private labels: pass --labels-from RAW_STORE")


def video_table(store: Store, labels_from: str | Path | None = None, needs_private_labels: bool = False) -> VideoTable:
    """``store``'s video table; with ``labels_from`` (the raw store it was exported from) its private columns
    (``PRIVATE_COLUMNS``: attributes, subject, path) joined from that store by video id.

    An export that dropped them refuses ``needs_private_labels`` without ``labels_from``, in one line.
    """
    table = store.videos()
    if labels_from is None:
        if needs_private_labels:
            check_private_labels(store, labels_from)
        return table
    source = open_store(labels_from)
    if source.private_labels_dropped:
        raise FeatstoreError(f"--labels-from {source.path} was exported without private labels too: pass the raw store")
    labels = source.videos()
    position = {video_id: index for index, video_id in enumerate(labels.video_id.tolist())}
    if len(position) != len(table) or any(video_id not in position for video_id in table.video_id.tolist()):
        raise FeatstoreError(f"--labels-from {source.path} does not hold the video ids of {store.path} "
                             f"({len(labels)} vs {len(table)} videos): pass the raw store it was exported from")
    names = store.dataset.get("header", {}).get("attribute_names", [])
    if source.dataset.get("header", {}).get("attribute_names", []) != names:
        raise FeatstoreError(f"--labels-from {source.path} names other private attributes than {store.path}")
    order = np.array([position[video_id] for video_id in table.video_id.tolist()], dtype=np.int64)
    return replace(table, **{column: getattr(labels, column)[order] for column in PRIVATE_COLUMNS})


class StoreData:
    """A store's video table and embeddings as tensors on ``device``, with the row arithmetic protocols need.

    ``kinds`` picks what is read into memory: ``"clips"``, ``"static"`` or both. ``labels_from`` and
    ``needs_private_labels``: see :func:`video_table` (a protocol reading attributes or subjects needs them).
    """

    def __init__(self, store: Store, device: torch.device, kinds: tuple[str, ...] = ("clips",),
                 labels_from: str | Path | None = None, needs_private_labels: bool = False):
        self.store = store
        self.device = device
        self.videos: VideoTable = video_table(store, labels_from, needs_private_labels)
        self.header: dict = store.dataset.get("header", {})
        self.offsets = {"clips": store.clip_offsets(), "static": store.static_offsets()}
        self.embeddings: dict[str, torch.Tensor] = {}
        for kind in kinds:
            if kind not in ("clips", "static"):
                raise ValueError(f"kind must be 'clips' or 'static', got {kind!r}")
            array = store.clip_embeddings if kind == "clips" else store.static_embeddings
            values = array[...]
            store.refuse_nonfinite(kind, values)
            if device.type == "cpu":  # CPU float16 gathers and casts are slow: pay the cast once
                values = values.astype(np.float32, copy=False)
            self.embeddings[kind] = torch.from_numpy(np.ascontiguousarray(values)).to(device)

    @property
    def class_names(self) -> list[str]:
        return list(self.header.get("class_names", []))

    @property
    def attribute_names(self) -> list[str]:
        return list(self.header.get("attribute_names", []))

    @property
    def task(self) -> str:
        return str(self.header.get("task", ""))

    def counts(self, kind: str) -> np.ndarray:
        return np.diff(self.offsets[kind])

    def split_videos(self, split: str, kind: str | None = None) -> np.ndarray:
        """Indices of the videos of ``split`` that have rows (of ``kind`` when given); an error if none."""
        videos = self.store.split_indices(split)
        if kind is not None:
            videos = videos[self.counts(kind)[videos] > 0]
        if len(videos) == 0:
            what = f" with {kind} embeddings" if kind else ""
            raise FeatstoreError(f"{self.store.path}: no {split!r} videos{what}")
        return videos

    def rows_of(self, videos: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """All ``kind`` rows of ``videos`` and, for each row, the position of its video in ``videos``."""
        starts = self.offsets[kind][videos]
        counts = self.counts(kind)[videos]
        owner = np.repeat(np.arange(len(videos)), counts)
        first_of_owner = np.repeat(np.cumsum(counts) - counts, counts)
        rows = np.repeat(starts, counts) + (np.arange(int(counts.sum())) - first_of_owner)
        return rows.astype(np.int64), owner.astype(np.int64)

    def evenly_spaced_rows(self, videos: np.ndarray, k: int = 5) -> np.ndarray:
        """(len(videos), k) clip rows at k evenly spaced positions (the 5-clip evaluation convention)."""
        rows = self.store.evenly_spaced_clip_rows(k)[videos]
        if (rows < 0).any():
            raise FeatstoreError(f"{self.store.path}: some videos asked for have no clips")
        return rows

    def video_means(self, videos: np.ndarray) -> torch.Tensor:
        """(len(videos), D) float32: the mean of each video's clip embeddings."""
        rows, owner = self.rows_of(videos, "clips")
        clips = self.embeddings["clips"]
        sums = torch.zeros((len(videos), clips.shape[1]), dtype=torch.float32, device=self.device)
        sums.index_add_(0, torch.from_numpy(owner).to(self.device), clips[torch.from_numpy(rows).to(self.device)].float())
        counts = torch.from_numpy(self.counts("clips")[videos]).to(self.device, torch.float32).clamp_min(1)
        return sums / counts[:, None]

    def tensor(self, values: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(values, dtype=dtype).to(self.device)

    def all_rows_sampler(self, videos: np.ndarray, kind: str) -> AllRows:
        """Every ``kind`` row of ``videos`` once per epoch; targets indexed by store video index."""
        rows, owner = self.rows_of(videos, kind)
        return AllRows.of(rows, videos[owner])

    def random_row_sampler(self, videos: np.ndarray, kind: str = "clips") -> OneRowPerGroup:
        """One random ``kind`` row of each video per epoch; targets indexed by store video index."""
        return OneRowPerGroup.of(self.offsets[kind][videos], self.counts(kind)[videos], videos)


# ---------------------------------------------------------------------------------------------- sampling
class EpochSampler(Protocol):
    """One epoch of training samples, already shuffled: (feature rows, target indices), CPU int64."""

    def __len__(self) -> int: ...

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class AllRows:
    """Every row once per epoch, in a fresh random order; ``targets[i]`` is row i's target index."""

    rows: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.rows)

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        order = torch.randperm(len(self.rows), generator=generator)
        return self.rows[order], self.targets[order]

    @classmethod
    def of(cls, rows: np.ndarray, targets: np.ndarray) -> AllRows:
        return cls(torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(targets, dtype=torch.int64))


@dataclass
class OneRowPerGroup:
    """One uniformly drawn row of each group per epoch (the "random clip of each video" convention).

    Group g owns rows ``starts[g] : starts[g] + counts[g]`` (counts > 0); its target index is ``targets[g]``.
    """

    starts: torch.Tensor
    counts: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.starts)

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = (torch.rand(len(self.starts), generator=generator, dtype=torch.float64) * self.counts).long()
        order = torch.randperm(len(self.starts), generator=generator)
        return (self.starts + offsets)[order], self.targets[order]

    @classmethod
    def of(cls, starts: np.ndarray, counts: np.ndarray, targets: np.ndarray) -> OneRowPerGroup:
        if (np.asarray(counts) <= 0).any():
            raise ValueError("every group needs at least one row")
        return cls(*(torch.as_tensor(a, dtype=torch.int64) for a in (starts, counts, targets)))


# ---------------------------------------------------------------------------------------------- training
@dataclass
class TrainSettings:
    """How a head is trained: AdamW, optional reduce-on-plateau of the mean epoch training loss."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    seed: int = 0
    plateau_factor: float | None = None  # None: constant learning rate
    plateau_patience: int = 10  # torch's default; the paper gives only the factor (1/5)


@dataclass
class TrainOutcome:
    """What happened in the loop; ``model`` holds the selected epoch's weights after training."""

    losses: list[float]
    selected_epoch: int  # 1-based; the last epoch when nothing selects
    selection_scores: list[float] = field(default_factory=list)
    loop_seconds: float = 0.0  # the whole epoch loop, selection included
    selection_seconds: float = 0.0  # per-epoch model selection (evaluation) inside the loop
    batch_seconds: float = 0.0  # gathering batches (index + cast) inside the loop


def seeded_module(build: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """Build a module with weights drawn from ``seed`` (on the CPU, so CPU and GPU runs start equal),
    without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return module.to(device)


def linear_head(dim: int, n_classes: int) -> Callable[[], nn.Module]:
    return lambda: nn.Linear(dim, n_classes)


def mlp_head(dim: int, n_outputs: int) -> Callable[[], nn.Module]:
    """The privacy protocols' attacker: Linear(d, d) - ReLU - Linear(d, A)."""
    return lambda: nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, n_outputs))


def _new_progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs {task.fields[info]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console, disable=not enabled,
        transient=True,
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_head(
    model: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    sampler: EpochSampler,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    settings: TrainSettings,
    select: Callable[[nn.Module], float] | None = None,
    description: str = "train",
    show_progress: bool = False,
) -> TrainOutcome:
    """Train ``model`` on ``features[rows]`` -> ``targets[target_index]`` batches drawn by ``sampler``.

    ``select(model)`` (model in eval mode, no grad), when given, scores the model after every
    epoch; the weights of the best-scoring epoch (the earliest on ties; nan counts as worst) are
    loaded back at the end. Without it the last epoch is kept. Seeded: the same inputs and
    settings give the same weights.
    """
    device = features.device
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = None
    if settings.plateau_factor is not None:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=settings.plateau_factor, patience=settings.plateau_patience
        )
    outcome = TrainOutcome(losses=[], selected_epoch=settings.epochs)
    best_score, best_state = -math.inf, None
    batch_buffer = features.new_empty((settings.batch_size, *features.shape[1:]))
    started = time.perf_counter()
    with _new_progress(show_progress) as progress:
        task = progress.add_task(description, total=settings.epochs, info="")
        for epoch in range(1, settings.epochs + 1):
            model.train()
            rows, target_index = sampler(generator)
            rows, target_index = rows.to(device), target_index.to(device)
            loss_sum = torch.zeros((), device=device)
            for start in range(0, len(rows), settings.batch_size):
                gathered = time.perf_counter()
                batch_rows = rows[start : start + settings.batch_size]
                # index_select is ~2x faster than features[rows] on the CPU, into a reused buffer faster still;
                # the buffer is free again once the step is done (nothing keeps the previous batch)
                if len(batch_rows) == settings.batch_size:
                    inputs = torch.index_select(features, 0, batch_rows, out=batch_buffer).float()
                else:
                    inputs = torch.index_select(features, 0, batch_rows).float()
                batch_targets = targets[target_index[start : start + settings.batch_size]]
                outcome.batch_seconds += time.perf_counter() - gathered
                loss = loss_fn(model(inputs), batch_targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(batch_rows)
            epoch_loss = float(loss_sum) / max(1, len(rows))  # one device sync per epoch
            outcome.losses.append(epoch_loss)
            if scheduler is not None:
                scheduler.step(epoch_loss)
            info = f"loss {epoch_loss:.4f}"
            if select is not None:
                selecting = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    score = float(select(model))
                outcome.selection_scores.append(score)
                if not math.isnan(score) and score > best_score:
                    best_score, outcome.selected_epoch = score, epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                outcome.selection_seconds += time.perf_counter() - selecting
                info += f"  select {score:.4f} (best {best_score:.4f} @ {outcome.selected_epoch})"
            progress.update(task, advance=1, info=info)
    _synchronize(device)
    outcome.loop_seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return outcome


@torch.no_grad()
def predict(model: nn.Module, features: torch.Tensor, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Model outputs for ``features[rows]``, any shape of ``rows``: result shape rows.shape + (out,)."""
    rows = torch.as_tensor(rows, dtype=torch.int64, device=features.device)
    flat = rows.reshape(-1)
    model.eval()
    outputs = [model(features[flat[start : start + PREDICT_BATCH]].float()) for start in range(0, len(flat), PREDICT_BATCH)]
    if not outputs:
        return torch.zeros((*rows.shape, 0), device=features.device)
    out = torch.cat(outputs)
    return out.reshape(*rows.shape, out.shape[-1])


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the known targets only (-1 = unknown does not count)."""
    known = (targets >= 0).float()
    losses = nn.functional.binary_cross_entropy_with_logits(logits, targets.clamp_min(0).float(), reduction="none")
    return (losses * known).sum() / known.sum().clamp_min(1.0)


def carve_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of positions 0..n-1 into (train, validation); validation gets round(fraction*n), >= 1."""
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    if n_val < 1:
        raise FeatstoreError(f"cannot carve a validation split out of {n} training videos")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ---------------------------------------------------------------------------------------------- results
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
    provenance, header = store.provenance, store.dataset.get("header", {})
    summary = {
        "path": str(store.path),
        "dataset": header.get("name"),
        "task": header.get("task"),
        "encoder": provenance.get("encoder"),
        "weights": provenance.get("weights"),
        "weights_sha256": provenance.get("weights_sha256"),
        "dim": store.dim,
        "dtype": str(store.clip_embeddings.dtype),
        "n_videos": store.n_videos,
        "finalized": store.attrs.get("featstore", {}).get("finalized"),
    }
    anonymizer = provenance.get("anonymizer")
    if anonymizer:  # an exported store records what made it inside its provenance, not at the top level
        summary["anonymizer"] = {key: anonymizer.get(key) for key in ("run", "aam_sha256", "epoch", "source_store")}
    # anything else at the top level (for example what made an anonymized copy) is kept as it is
    for key, value in store.attrs.items():
        if key not in STANDARD_STORE_ATTRS:
            summary[key] = value
    return summary


def save_result(out_dir: Path, name: str, config, metrics: dict,
                store: Store | Mapping[str, Store] | None = None) -> Path:
    """Write ``<out_dir>/<name>.json``: protocol, config, metrics, store(s) and their provenance.

    ``store`` is one store or ``{role: store}`` for protocols that read several (e.g. raw and
    anonymized). Written to a temporary file and renamed, so a result file is always whole.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FeatstoreError(f"--out {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(store, Store):
        store_path, provenance = str(store.path), store_summary(store)
    elif store is None:
        store_path, provenance = None, None
    else:
        store_path = {role: str(s.path) for role, s in store.items()}
        provenance = {role: store_summary(s) for role, s in store.items()}
    document = {
        "protocol": name,
        "config": json_safe(config),
        "metrics": json_safe(metrics),
        "store": store_path,
        "store_provenance": json_safe(provenance),
        "finished": utc_now(),
    }
    path = out_dir / f"{name}.json"
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def load_result(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FeatstoreError(f"cannot read result file {path}: {exc}") from exc


def format_value(value) -> str:
    if value is None:
        return "n/a (undefined)"
    if isinstance(value, float):
        return "nan (undefined)" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value[:8]) + (" ..." if len(value) > 8 else "")
    return str(value)


def flatten_metrics(metrics: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts -> [("a.b", value)] rows, in insertion order."""
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(flatten_metrics(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def print_metrics(title: str, metrics: Mapping, skip: tuple[str, ...] = ("timing",)) -> None:
    """A two-column rich table of every (flattened) metric; keys in ``skip`` are left out."""
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in flatten_metrics({k: v for k, v in metrics.items() if k not in skip}):
        table.add_row(name, format_value(value))
    console.print(table)


def print_columns(title: str, columns: list[str], rows: list[list]) -> None:
    """A rich table with a header row (e.g. attributes x attackers)."""
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(format_value(v) if not isinstance(v, str) else v for v in row))
    console.print(table)


# ---------------------------------------------------------------------------------------------- CLI
def default_out_dir(store_path: str | Path) -> Path:
    """``runs/eval/<store stem>/`` (``raw`` for ``runs/raw.zarr`` and for ``s3://bucket/raw.zarr``)."""
    return DEFAULT_OUT_ROOT / Path(str(store_path).rstrip("/")).stem


def store_option() -> typer.models.OptionInfo:
    return typer.Option(..., "--store", help="Feature store to evaluate: a .zarr path or an fsspec URL.")


def out_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--out", help="Folder for the JSON result (default: runs/eval/STORE-STEM/).")


def device_option() -> typer.models.OptionInfo:
    return typer.Option("auto", "--device", help="auto (GPU when present), cpu, cuda or cuda:N.")


def seed_option() -> typer.models.OptionInfo:
    return typer.Option(0, "--seed", help="Seed for weights, sampling and splits; same seed, same numbers.")


def progress_option() -> typer.models.OptionInfo:
    return typer.Option(True, "--progress/--no-progress", help="Show progress bars.")


def open_store(path: str | Path) -> Store:
    return Store.open(path)


def labels_from_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--labels-from", help="The raw store an anonymized --store was exported from: its "
                        "private labels (attributes, subjects) are joined by video id (an export drops them).")


def finish(name: str, config, metrics: dict, store: Store | Mapping[str, Store], out: Optional[Path],
           title: str | None = None, printer: Callable[[], None] | None = None) -> Path:
    """The end of every subcommand: write the JSON result, print the metrics table and the path.

    ``printer`` replaces the default flattened metrics table (e.g. an attributes x attackers table).
    """
    first = store if isinstance(store, Store) else next(iter(store.values()))
    path = save_result(out if out is not None else default_out_dir(first.path), name, config, metrics, store)
    if printer is None:
        print_metrics(title or f"{name}: {first.path}", metrics)
    else:
        printer()
    console.print(f"wrote {path}")
    return path


def device_of(requested: str) -> torch.device:
    return resolve_device(requested)


class Stopwatch:
    """Wall time of a whole protocol run, for the timing block of the metrics."""

    def __init__(self, device: torch.device):
        self.device = device
        self.started = time.perf_counter()

    def seconds(self) -> float:
        _synchronize(self.device)
        return time.perf_counter() - self.started


def timing_block(total_seconds: float, outcomes: list[TrainOutcome]) -> dict:
    """Where the time went: inside the training loops (optimizer steps, batch gathering, per-epoch
    selection) versus outside them (loading, tensor building, final metrics)."""
    loop = sum(o.loop_seconds for o in outcomes)
    return {
        "total_s": total_seconds,
        "training_loop_s": loop,
        "batch_gather_s": sum(o.batch_seconds for o in outcomes),
        "selection_s": sum(o.selection_seconds for o in outcomes),
        "outside_loop_s": total_seconds - loop,
        "outside_loop_share": (total_seconds - loop) / total_seconds if total_seconds > 0 else math.nan,
    }
