"""Latent baselines: closed-form or fitted transforms of the embeddings, written as run folders that
``anonymize export``, ``anonymize info`` and ``evaluate attack`` / ``tradeoff`` / ``report`` accept.

``anonymize baseline --method M --store S --run RUN`` fits a transform on the store's *train* split
(its clips; static clips only where a method's ``--fit-rows`` says so) and writes RUN. Every method
maps a D-dim embedding to a D-dim embedding, so every protocol runs unchanged on the exported store:

- ``lda-action``: x -> mu + P (x - mu), P the orthogonal projector onto the linear discriminant
  subspace of the action labels (n_classes - 1 dims). The LDA coordinates V^T x are unchanged by P, so
  an LDA classifier scores the output as it scores the input.
- ``pca``: x -> mu + U_k U_k^T (x - mu), the top ``--components`` principal directions.
- ``gaussian-noise``: x -> x + f * sigma * n(x), sigma the per-dimension train std, f
  ``--noise-fraction``, n(x) a standard normal vector drawn from a counter-based generator keyed by
  (seed, a hash of the row's float32 bytes): the same row always gets the same noise, whatever the
  batch or the order of the export (reproducible exports; identical rows get identical noise).
- ``random-projection``: x -> mu + Q Q^T (x - mu), Q an orthonormal basis of the row space of a seeded
  k x D Gaussian matrix R (Q Q^T = R^+ R, applied to the centred embedding).
- ``leace`` (supervised): LEACE (Belrose et al. 2023), x -> x - W^+ P W (x - mu), W = Sigma^{-1/2}
  (pseudo-inverse square root), P the orthogonal projector onto the column space of W Sigma_xz, z the
  binary private attributes. Afterwards the cross-covariance of the output with z is 0: no linear
  predictor of z does better than a constant (on the fitted rows). The map is a projection.
- ``static-cca`` (self-supervised: no attribute label): x -> x - W^+ U_k U_k^T W (x - mu), W = Sigma_xx^{-1/2}
  and U_k the top ``--components`` left singular vectors of W Sigma_xs Sigma_ss^{-1/2}: the clip directions most
  canonically correlated with the video's raw static clips (s: the mean of its static embeddings), i.e.
  what a single frame (appearance, skin tone, clothing, scene) predicts linearly. LEACE's oblique form, with
  the static clip in place of attribute labels; both covariances get a ridge of ``STATIC_CCA_RIDGE`` x their
  mean variance (a video's static mean repeats for each of its clips, so Sigma_ss has at most one rank per
  training video, often fewer than D).
- ``inlp`` (supervised): INLP (Ravfogel et al. 2020): ``--iterations`` times, a logistic regression per
  attribute on the current projected rows; the rows are projected onto the nullspace of every weight
  vector so far; x -> mu + P (x - mu) with P that final orthogonal nullspace projector.

Unknown attribute labels (-1) are left out per attribute: attribute a's cross-covariance (LEACE) and
classifier (INLP) use the rows whose video has a known value of a; the covariance uses every row.
Attributes are binary (> 0 = present). "supervised" means the method reads the private attribute
labels; it is recorded in ``baseline.json``, in exports' provenance and in ``load_trained_aam``'s record.

Run folder::

    baseline.json             BaselineConfig: method, store, options, supervised, fitted dims, sha256
    aam.safetensors           the transform's tensors (its SHA-256 is the anonymizer hash everywhere)
    checkpoint.json, config.json   compatibility records (epoch 0, dim; a TrainConfig naming the store)
                                   so that readers of training runs (the trade-off) accept the folder
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from anonymize import checkpoint as ckpt
from featstore.hashing import file_sha256
from data_manifests.errors import FeatstoreError
from featstore.exporters import local_output
from featstore.store import Location, Store, utc_now

BASELINE_FILE = ckpt.BASELINE_FILE
FIT_ROWS = ("clips", "clips+static")
# method -> (reads the private attribute labels, options it takes)
METHODS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "lda-action": (False, ("shrinkage",)),
    "pca": (False, ("components",)),
    "gaussian-noise": (False, ("noise_fraction",)),
    "random-projection": (False, ("components",)),
    "static-cca": (False, ("components",)),
    "leace": (True, ("fit_rows",)),
    "inlp": (True, ("iterations", "fit_rows", "max_rows")),
}
DEFAULTS = {"noise_fraction": 1.0, "iterations": 10, "shrinkage": 0.0, "fit_rows": "clips", "max_rows": 50000}
REQUIRED = ("components",)
OPTION_FLAGS = {"components": "--components", "noise_fraction": "--noise-fraction", "iterations": "--iterations",
                "shrinkage": "--shrinkage", "fit_rows": "--fit-rows", "max_rows": "--max-rows"}
EIGEN_RTOL = 1e-10  # eigen/singular values below this share of the largest count as zero
STATIC_CCA_RIDGE = 0.05  # static-cca: ridge on both covariances, x their mean variance


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class BaselineModuleSpec:
    """What readers of ``LoadedAAM.config.aam`` look at (the attack's report, the export's mode)."""

    architecture: str
    mode: str = "clip"
    layers: int = 0
    window: int = 0

    @property
    def context_window(self) -> int:
        return 0  # every baseline maps each row on its own

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class BaselineConfig:
    method: str
    store: str
    out: str
    seed: int = 0
    components: int | None = None
    noise_fraction: float | None = None
    iterations: int | None = None
    shrinkage: float | None = None
    fit_rows: str | None = None
    max_rows: int | None = None
    split: str = "train"
    supervised: bool | None = None  # derived from the method; recorded for readers of the JSON
    fitted: dict = field(default_factory=dict)  # what the fit found: dims, rows, per-method details
    sha256: str | None = None  # of aam.safetensors
    created: str | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise FeatstoreError(f"unknown baseline method {self.method!r}: choose one of {list(METHODS)}")
        supervised, options = METHODS[self.method]
        if self.supervised is not None and bool(self.supervised) != supervised:
            raise FeatstoreError(f"baseline {self.method!r} is {'' if supervised else 'not '}supervised, "
                                 f"the record says supervised={self.supervised}")
        self.supervised = supervised
        for name, flag in OPTION_FLAGS.items():
            value = getattr(self, name)
            if name not in options:
                if value is not None and not (name == "fit_rows" and value == "clips"):
                    raise FeatstoreError(f"{flag} does not apply to the {self.method!r} baseline")
                if name == "fit_rows":
                    self.fit_rows = "clips"
            elif value is None:
                if name in REQUIRED:
                    raise FeatstoreError(f"the {self.method!r} baseline needs {flag}")
                setattr(self, name, DEFAULTS[name])
        checks = [
            (self.components is None or self.components >= 1, f"--components must be >= 1, got {self.components}"),
            (self.noise_fraction is None or (math.isfinite(self.noise_fraction) and self.noise_fraction > 0),
             f"--noise-fraction must be a positive number, got {self.noise_fraction}"),
            (self.iterations is None or self.iterations >= 1, f"--iterations must be >= 1, got {self.iterations}"),
            (self.shrinkage is None or 0 <= self.shrinkage <= 1, f"--shrinkage must be in [0, 1], got {self.shrinkage}"),
            (self.fit_rows in FIT_ROWS, f"--fit-rows must be one of {list(FIT_ROWS)}, got {self.fit_rows!r}"),
            (self.max_rows is None or self.max_rows >= 2, f"--max-rows must be >= 2, got {self.max_rows}"),
        ]
        for ok, message in checks:
            if not ok:
                raise FeatstoreError(message)

    @property
    def label(self) -> str:
        return f"{self.method} (supervised)" if self.supervised else self.method

    @property
    def aam(self) -> BaselineModuleSpec:
        return BaselineModuleSpec(architecture=f"baseline {self.label}")

    def options(self) -> dict:
        """The method's options (after defaults)."""
        return {name: getattr(self, name) for name in METHODS[self.method][1]}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> BaselineConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise FeatstoreError(f"unknown baseline config keys {unknown}")
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> BaselineConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FeatstoreError(f"cannot read the baseline record {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise FeatstoreError(f"{path} is not a baseline record")
        return cls.from_json(data)


# ---------------------------------------------------------------------------------------------- transform
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def row_noise(rows: np.ndarray, seed: int) -> np.ndarray:
    """(N, D) float32 standard normal noise, a function of (seed, each row's float32 bytes) alone.

    Row key = mix(sum_j mix(bits_j + (j + 1) * golden) ^ mix(seed)); noise_j = Box-Muller of the
    uniforms mix(key + (2j + 1) * golden), mix(key + (2j + 2) * golden). No state: a row's noise does
    not depend on the batch it is in or on the order of the rows.
    """
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n, dim = rows.shape
    with np.errstate(over="ignore"):
        bits = rows.view(np.uint32).astype(np.uint64)
        columns = (np.arange(dim, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        seed_key = _mix(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) + _GOLDEN)
        keys = _mix(_mix(bits + columns[None, :]).sum(axis=1, dtype=np.uint64) ^ seed_key)
        counters = (np.arange(2 * dim, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        draws = _mix(keys[:, None] + counters[None, :])
    uniform = ((draws >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
    radius = np.sqrt(-2.0 * np.log(uniform[:, :dim]))
    return (radius * np.cos(2.0 * math.pi * uniform[:, dim:])).astype(np.float32).reshape(n, dim)


class BaselineTransform(nn.Module):
    """A fitted baseline as a module (buffers only, nothing trainable; differentiable in its input).

    ``affine``: y = x + (x - center) delta^T (delta = M - I for the linear map M about ``center``:
    projections stay exact when M is close to the identity). ``noise``: y = x + noise_scale * n(x)
    with ``row_noise`` (the noise is a constant for autograd: the white-box attacker sees
    identity + noise).
    """

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        if set(tensors) == {"center", "delta"}:
            self.kind = "affine"
        elif set(tensors) == {"noise_scale", "seed"}:
            self.kind = "noise"
        else:
            raise FeatstoreError(f"not a baseline transform (tensors {sorted(tensors)})")
        for name, value in tensors.items():
            self.register_buffer(name, value.clone())

    @property
    def dim(self) -> int:
        return int((self.center if self.kind == "affine" else self.noise_scale).shape[0])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "affine":
            centred = x - self.center.to(x.dtype)
            return x + centred @ self.delta.to(x.dtype).T
        flat = x.detach().reshape(-1, x.shape[-1]).to("cpu", torch.float32).numpy()
        noise = torch.from_numpy(row_noise(flat, int(self.seed[0]))).reshape(x.shape)
        return x + self.noise_scale.to(x.dtype) * noise.to(x.device, x.dtype)


def affine_tensors(center: np.ndarray, linear: np.ndarray) -> dict[str, torch.Tensor]:
    """Tensors of x -> center + linear (x - center)."""
    delta = np.asarray(linear, dtype=np.float64) - np.eye(len(center))
    return {"center": torch.from_numpy(np.asarray(center, dtype=np.float32)),
            "delta": torch.from_numpy(delta.astype(np.float32))}


# ---------------------------------------------------------------------------------------------- fit data
class Moments:
    """Streaming first and second moments (float64, shifted by the first block's mean for accuracy)."""

    def __init__(self, dim: int):
        self.n = 0
        self.shift: np.ndarray | None = None
        self.sum = np.zeros(dim)
        self.outer = np.zeros((dim, dim))

    def add(self, rows: np.ndarray) -> np.ndarray:
        """Add rows; returns them shifted (float64) for other accumulators."""
        rows = np.asarray(rows, dtype=np.float64)
        if self.shift is None:
            self.shift = rows.mean(0)
        shifted = rows - self.shift
        self.n += len(rows)
        self.sum += shifted.sum(0)
        self.outer += shifted.T @ shifted
        return shifted

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.sum / self.n

    def covariance(self) -> np.ndarray:
        m = self.sum / self.n
        return self.outer / self.n - np.outer(m, m)


@dataclass
class FitRows:
    """Which rows a fit reads: the train split's videos, the row kinds, and the store's labels."""

    store: Store
    kinds: tuple[str, ...]
    train: np.ndarray  # bool per video
    labels: np.ndarray  # action label per video
    attributes: np.ndarray  # (V, K) per video, -1 = unknown

    def blocks(self):
        """(rows float32, owner video) for every fit row, in whole-shard blocks (memory: one shard)."""
        for kind in self.kinds:
            offsets = self.store.clip_offsets() if kind == "clips" else self.store.static_offsets()
            for start, block in Store.iter_blocks(self.store.embeddings(kind)):
                rows = np.arange(start, start + len(block))
                owner = np.searchsorted(offsets, rows, side="right") - 1
                keep = self.train[owner]
                if keep.any():
                    yield np.asarray(block[keep], dtype=np.float32), owner[keep]


def _open_fit_rows(store: Store, config: BaselineConfig) -> FitRows:
    videos = store.videos()
    counts = np.diff(store.clip_offsets())
    train = np.zeros(store.n_videos, dtype=bool)
    train[store.split_indices(config.split)] = True
    train &= counts > 0
    if not train.any():
        raise FeatstoreError(f"{store.path}: no {config.split!r} videos with clips to fit the baseline on")
    kinds = ("clips", "static") if config.fit_rows == "clips+static" else ("clips",)
    attributes = np.asarray(videos.attributes, dtype=np.int64).reshape(store.n_videos, -1)
    return FitRows(store, kinds, train, np.asarray(videos.label, dtype=np.int64), attributes)


def _orthonormal_basis(vectors: np.ndarray) -> np.ndarray:
    """(D, r) orthonormal basis of the column space of ``vectors`` (D, m), rank by relative tolerance."""
    if vectors.size == 0:
        return np.zeros((vectors.shape[0], 0))
    u, s, _ = np.linalg.svd(vectors, full_matrices=False)
    if not len(s) or s[0] <= 0:
        return np.zeros((vectors.shape[0], 0))
    return u[:, s > s[0] * max(EIGEN_RTOL, vectors.shape[0] * np.finfo(float).eps)]


def _check_components(config: BaselineConfig, dim: int) -> int:
    if not 1 <= config.components <= dim:
        raise FeatstoreError(f"--components must be in [1, {dim}] for {dim}-d embeddings, got {config.components}")
    return config.components


def _usable_attributes(store: Store, data: FitRows, config: BaselineConfig) -> list[int]:
    """Attributes with both values among the train videos' known labels; an error when there is none."""
    names = store.attribute_names
    if not names or data.attributes.shape[1] == 0:
        raise FeatstoreError(f"{store.path} has no private attribute labels: the {config.method!r} baseline needs them")
    usable = []
    for a in range(data.attributes.shape[1]):
        known = data.attributes[data.train, a]
        known = known[known >= 0]
        if (known > 0).any() and (known == 0).any():
            usable.append(a)
    if not usable:
        raise FeatstoreError(f"{store.path}: no private attribute has both values among the {config.split!r} videos' "
                             f"known labels: the {config.method!r} baseline has nothing to erase")
    return usable


# ---------------------------------------------------------------------------------------------- methods
def _fit_moments(data: FitRows, dim: int) -> Moments:
    moments = Moments(dim)
    for rows, _ in data.blocks():
        moments.add(rows)
    return moments


def fit_pca(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    k = _check_components(config, dim)
    moments = _fit_moments(data, dim)
    values, vectors = np.linalg.eigh(moments.covariance())
    top = vectors[:, ::-1][:, :k]
    total = float(values.clip(min=0).sum())
    explained = float(values[::-1][:k].clip(min=0).sum() / total) if total > 0 else 1.0
    return affine_tensors(moments.mean, top @ top.T), {"rows": moments.n, "dims": k, "explained_variance": explained}


def fit_random_projection(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    k = _check_components(config, dim)
    moments = _fit_moments(data, dim)
    projection = np.random.default_rng(config.seed).standard_normal((k, dim))
    basis, _ = np.linalg.qr(projection.T)  # (D, k): the row space of R
    return affine_tensors(moments.mean, basis @ basis.T), {"rows": moments.n, "dims": k}


def fit_gaussian_noise(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    moments = _fit_moments(data, dim)
    std = np.sqrt(np.diag(moments.covariance()).clip(min=0))
    tensors = {"noise_scale": torch.from_numpy((config.noise_fraction * std).astype(np.float32)),
               "seed": torch.tensor([config.seed], dtype=torch.int64)}
    return tensors, {"rows": moments.n, "dims": dim, "mean_train_std": float(std.mean())}


def fit_lda_action(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    names = data.store.class_names
    if len(names) < 2:
        raise FeatstoreError(f"{data.store.path} has {len(names)} action classes: the 'lda-action' baseline needs >= 2")
    n_classes = len(names)
    moments = Moments(dim)
    class_sums, class_counts = np.zeros((n_classes, dim)), np.zeros(n_classes)
    for rows, owner in data.blocks():
        labels = data.labels[owner]
        keep = (labels >= 0) & (labels < n_classes)
        if not keep.any():
            continue
        shifted = moments.add(rows[keep])
        np.add.at(class_sums, labels[keep], shifted)
        class_counts += np.bincount(labels[keep], minlength=n_classes)
    present = np.flatnonzero(class_counts > 0)
    if len(present) < 2:
        raise FeatstoreError(f"{data.store.path}: {len(present)} action classes have labelled {config.split!r} clips: "
                             "the 'lda-action' baseline needs >= 2")
    means = class_sums[present] / class_counts[present, None]  # shifted class means
    overall = moments.sum / moments.n
    within = (moments.outer - (class_counts[present, None, None] * means[:, :, None] * means[:, None, :]).sum(0)) / moments.n
    between = ((class_counts[present, None, None] * (means - overall)[:, :, None] * (means - overall)[:, None, :]).sum(0)
               / moments.n)
    scale = max(float(np.trace(within)) / dim, np.finfo(float).tiny)
    within = (1 - config.shrinkage) * within + (config.shrinkage + 1e-6) * scale * np.eye(dim)
    values, vectors = np.linalg.eigh(within)
    whiten = vectors @ np.diag(values.clip(min=np.finfo(float).tiny) ** -0.5) @ vectors.T
    scores, directions = np.linalg.eigh(whiten @ between @ whiten)
    order = np.argsort(scores)[::-1][: min(len(present) - 1, dim)]
    order = order[scores[order] > max(scores.max(), 0) * EIGEN_RTOL]
    basis = _orthonormal_basis(whiten @ directions[:, order])  # the discriminant directions V, orthonormalized
    fitted = {"rows": moments.n, "dims": int(basis.shape[1]), "classes": int(len(present)),
              "discriminant_ratios": [float(scores[i]) for i in order]}
    return affine_tensors(moments.mean, basis @ basis.T), fitted


def fit_leace(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    usable = _usable_attributes(data.store, data, config)
    moments = Moments(dim)
    k = len(usable)
    n_known, sum_x, sum_z, sum_xz = np.zeros(k), np.zeros((dim, k)), np.zeros(k), np.zeros((dim, k))
    for rows, owner in data.blocks():
        shifted = moments.add(rows)
        labels = data.attributes[owner][:, usable]
        known = (labels >= 0).astype(np.float64)
        z = (labels > 0).astype(np.float64) * known
        n_known += known.sum(0)
        sum_x += shifted.T @ known
        sum_z += z.sum(0)
        sum_xz += shifted.T @ z
    # Cross-covariance of x with each attribute over the rows where it is known.
    cross = sum_xz / n_known - (sum_x / n_known) * (sum_z / n_known)
    values, vectors = np.linalg.eigh(moments.covariance())
    keep = values > values.max() * EIGEN_RTOL
    u, lam = vectors[:, keep], values[keep]
    whiten = u @ np.diag(lam ** -0.5) @ u.T  # W = Sigma^{-1/2} (pseudo-inverse on the covariance's range)
    unwhiten = u @ np.diag(lam ** 0.5) @ u.T  # W^+
    basis = _orthonormal_basis(whiten @ cross)  # column space of W Sigma_xz
    eraser = unwhiten @ basis @ basis.T @ whiten  # W^+ P W
    names = data.store.attribute_names
    fitted = {"rows": moments.n, "dims": dim - int(basis.shape[1]), "erased_dims": int(basis.shape[1]),
              "attributes": [names[a] if a < len(names) else str(a) for a in usable],
              "known_rows": [int(n) for n in n_known]}
    return affine_tensors(moments.mean, np.eye(dim) - eraser), fitted


def fit_inlp(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    from sklearn.linear_model import LogisticRegression

    usable = _usable_attributes(data.store, data, config)
    chunks, owners = [], []
    for rows, owner in data.blocks():
        chunks.append(rows)
        owners.append(owner)
    rows, owner = np.concatenate(chunks), np.concatenate(owners)
    n_rows = len(rows)
    if len(rows) > config.max_rows:  # a seeded subsample keeps memory and time bounded
        pick = np.sort(np.random.default_rng(config.seed).choice(len(rows), config.max_rows, replace=False))
        rows, owner = rows[pick], owner[pick]
    mean = rows.astype(np.float64).mean(0)
    centred = rows.astype(np.float64) - mean
    scale = float(np.sqrt((centred ** 2).mean())) or 1.0
    centred /= scale  # one global scale: directions in this space are directions in the embedding space
    labels = data.attributes[owner][:, usable]
    projector = np.eye(dim)
    directions: list[np.ndarray] = []
    accuracy = []
    for _ in range(config.iterations):
        projected = centred @ projector
        scores = []
        for column in range(len(usable)):
            known = labels[:, column] >= 0
            target = labels[known, column] > 0
            if target.all() or not target.any():
                continue
            classifier = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
            classifier.fit(projected[known], target)
            scores.append(float(classifier.score(projected[known], target)))
            directions.append(classifier.coef_[0].astype(np.float64))
        accuracy.append(scores)
        basis = _orthonormal_basis(np.stack(directions, 1)) if directions else np.zeros((dim, 0))
        projector = np.eye(dim) - basis @ basis.T
    removed = dim - int(round(np.trace(projector)))
    names = data.store.attribute_names
    fitted = {"rows": n_rows, "rows_used": int(len(rows)), "dims": dim - removed, "removed_dims": removed,
              "attributes": [names[a] if a < len(names) else str(a) for a in usable],
              "train_accuracy": accuracy}
    return affine_tensors(mean, projector), fitted


def _static_means(store: Store, train: np.ndarray, dim: int) -> np.ndarray:
    """(V, D) float32: the mean static embedding of each training video (zeros elsewhere), streamed."""
    offsets = store.static_offsets()
    sums, counts = np.zeros((store.n_videos, dim), dtype=np.float64), np.diff(offsets)
    for start, block in Store.iter_blocks(store.embeddings("static")):
        owner = np.searchsorted(offsets, np.arange(start, start + len(block)), side="right") - 1
        keep = train[owner]
        np.add.at(sums, owner[keep], np.asarray(block[keep], dtype=np.float64))
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def _ridge_inverse_sqrt(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C + r I)^{-1/2} and (C + r I)^{1/2}, r = STATIC_CCA_RIDGE x the mean variance."""
    ridge = STATIC_CCA_RIDGE * max(float(np.trace(covariance)) / len(covariance), np.finfo(float).tiny)
    values, vectors = np.linalg.eigh(covariance + ridge * np.eye(len(covariance)))
    values = values.clip(min=ridge)
    return vectors @ np.diag(values ** -0.5) @ vectors.T, vectors @ np.diag(values ** 0.5) @ vectors.T


def fit_static_cca(data: FitRows, config: BaselineConfig, dim: int) -> tuple[dict, dict]:
    k = _check_components(config, dim)
    has_static = np.diff(data.store.static_offsets()) > 0
    if not (data.train & has_static).any():
        raise FeatstoreError(f"{data.store.path} has no static clips in its {config.split!r} videos: the "
                             "'static-cca' baseline pairs each clip with its video's static clips")
    static = _static_means(data.store, data.train & has_static, dim)
    clips, statics = Moments(dim), Moments(dim)
    cross = np.zeros((dim, dim))
    for rows, owner in data.blocks():
        keep = has_static[owner]
        if keep.any():
            shifted_x = clips.add(rows[keep])
            shifted_s = statics.add(static[owner[keep]])
            cross += shifted_x.T @ shifted_s
    mean_x, mean_s = clips.sum / clips.n, statics.sum / statics.n  # of the shifted rows
    cross = cross / clips.n - np.outer(mean_x, mean_s)
    whiten_x, unwhiten_x = _ridge_inverse_sqrt(clips.covariance())
    whiten_s, _ = _ridge_inverse_sqrt(statics.covariance())
    directions, correlations, _ = np.linalg.svd(whiten_x @ cross @ whiten_s)
    basis = directions[:, :k]
    eraser = unwhiten_x @ basis @ basis.T @ whiten_x
    fitted = {"rows": clips.n, "dims": dim - k, "erased_dims": k,
              "canonical_correlations": [float(c) for c in correlations[:k]]}
    return affine_tensors(clips.mean, np.eye(dim) - eraser), fitted


FITTERS = {"lda-action": fit_lda_action, "pca": fit_pca, "gaussian-noise": fit_gaussian_noise,
           "random-projection": fit_random_projection, "static-cca": fit_static_cca, "leace": fit_leace,
           "inlp": fit_inlp}


# ---------------------------------------------------------------------------------------------- run folders
def is_baseline_run(run: Path) -> bool:
    return (Path(run) / BASELINE_FILE).is_file()


def _check_out(out: str | Path, overwrite: bool) -> None:
    """``out`` (a local folder or an fsspec URL) may take a baseline run: none there, or one to overwrite."""
    location = Location(out)
    if not location.is_url and location.path.is_file():
        raise FeatstoreError(f"--run {out} is a file, not a run folder")
    if location.is_file(BASELINE_FILE):
        if not overwrite:
            raise FeatstoreError(f"{out} already holds a baseline run (pass --overwrite to replace it)")
        return
    held = [name for name in (ckpt.CONFIG_FILE, ckpt.CHECKPOINT_JSON, ckpt.AAM_FILE) if location.is_file(name)]
    if held:
        raise FeatstoreError(f"{out} already holds an `anonymize train` run ({held[0]}); choose another --run")
    if location.is_url and location.exists() and not location.is_empty_folder():
        # the finished folder replaces what is at the URL: only an earlier baseline run may be replaced
        raise FeatstoreError(f"{out} exists and is not a baseline run; choose another --run")


def _compat_train_config(config: BaselineConfig) -> dict:
    """The config.json of a baseline run: a TrainConfig naming the store, with no training at all."""
    from anonymize.config import TrainConfig

    record = {"store": config.store, "out": config.out, "seed": config.seed, "epochs": 0, "head_init_epochs": 0,
              "identity": {"preset": "none"}, "w_budget": 0.0, "w_lc": 0.0, "budget_mode": "none", "progress": False}
    try:
        TrainConfig.from_json(record)
    except (FeatstoreError, TypeError):
        record = {"store": config.store, "out": config.out, "seed": config.seed}
    return record


@dataclass
class BaselineResult:
    run: Path | str
    config: BaselineConfig
    sha256: str


def fit_baseline(config: BaselineConfig, overwrite: bool = False) -> BaselineResult:
    """Fit ``config.method`` on the store's train split and write the run folder ``config.out``: a local
    folder, or an fsspec URL that the finished folder is copied to (``baseline.json``, which marks it, last)."""
    _check_out(config.out, overwrite)
    local = local_output(config.out)
    if local is not None:
        return _fit(config, local)
    location = Location(config.out)
    with tempfile.TemporaryDirectory(prefix="anonymize-baseline-") as folder:
        result = _fit(config, Path(folder))
        if location.is_file(BASELINE_FILE):  # an earlier baseline run, which --overwrite allows replacing
            location.remove_tree()
        location.upload_folder(Path(folder), last=BASELINE_FILE)
    return replace(result, run=config.out)


def _fit(config: BaselineConfig, out: Path) -> BaselineResult:
    """The fit, written to the local folder ``out``."""
    store = Store.open(config.store)
    if store.anonymizer:
        raise FeatstoreError(f"{config.store} is already anonymized: fit baselines on a raw store")
    data = _open_fit_rows(store, config)
    tensors, fitted = FITTERS[config.method](data, config, store.dim)
    config.fitted = {"dim": store.dim, "videos": int(data.train.sum()), "fit_rows": config.fit_rows, **fitted}
    config.created = utc_now()
    out.mkdir(parents=True, exist_ok=True)
    # The transform is written to a temporary name and hashed, then baseline.json (with the hash), then
    # the rename: an interrupted write leaves a folder whose hash check fails, never a silent mix.
    weights = out / ckpt.AAM_FILE
    pending = out / (ckpt.AAM_FILE + ".pending")
    # One metadata key: safetensors writes a metadata map in no fixed order, and the file's hash must be
    # a function of the fit alone.
    ckpt._atomic_save_tensors(tensors, pending, metadata={"anonymize_baseline": config.method})
    config.sha256 = file_sha256(pending)
    ckpt.atomic_write_text(out / BASELINE_FILE, json.dumps(config.to_json(), indent=2) + "\n")
    pending.replace(weights)
    numel = int(sum(t.numel() for t in tensors.values()))
    info = {"epoch": 0, "initialized": True, "history": [], "dim": store.dim, "parameters": {"baseline": numel},
            "aam_sha256": config.sha256, "baseline": config.method}
    ckpt.atomic_write_text(out / ckpt.CHECKPOINT_JSON, json.dumps(info, indent=1) + "\n")
    ckpt.atomic_write_text(out / ckpt.CONFIG_FILE, json.dumps(_compat_train_config(config), indent=2) + "\n")
    return BaselineResult(out, config, config.sha256)


def load_baseline(run: Path) -> tuple[BaselineTransform, BaselineConfig, str, dict]:
    """(module on CPU in eval mode, config, sha256 of aam.safetensors, info) of a baseline run folder."""
    run = Path(run)
    config = BaselineConfig.load(run / BASELINE_FILE)
    path = run / ckpt.AAM_FILE
    if not path.is_file():
        raise FeatstoreError(f"{run} has no fitted baseline ({ckpt.AAM_FILE}): run `anonymize baseline` again")
    sha = file_sha256(path)
    if sha != config.sha256:
        raise FeatstoreError(f"{path} does not match {BASELINE_FILE} (sha256 {sha[:12]}, recorded "
                             f"{str(config.sha256)[:12]}): an interrupted or edited run; re-run `anonymize baseline --overwrite`")
    module = BaselineTransform(load_file(str(path))).eval()
    dim = int(config.fitted.get("dim", module.dim))
    if module.dim != dim:
        raise FeatstoreError(f"{path} holds a {module.dim}-d transform; {BASELINE_FILE} says {dim}-d")
    info = {"dim": dim, "epoch": 0, "parameters": {"baseline": int(sum(b.numel() for b in module.buffers()))},
            "aam_sha256": sha, "baseline": config.to_json()}
    return module, config, sha, info


def describe_run(run: Path) -> dict:
    """What a table needs to know about a run folder, from its JSON alone: kind (aam | baseline),
    method, label (e.g. "leace (supervised)") and supervised (whether it read private attribute labels)."""
    run = Path(run)
    if is_baseline_run(run):
        config = BaselineConfig.load(run / BASELINE_FILE)
        return {"kind": "baseline", "method": config.method, "label": config.label, "supervised": bool(config.supervised)}
    from anonymize.budgets import budget_class
    from anonymize.config import TrainConfig

    config = TrainConfig.load(run / ckpt.CONFIG_FILE)
    supervised = budget_class(config.budget_mode).supervised
    label = f"aam {config.budget_mode}" + (" (supervised)" if supervised else "")
    return {"kind": "aam", "method": f"aam {config.budget_mode}", "label": label, "supervised": supervised}


def baseline_summary(run: Path) -> dict:
    """``anonymize info`` of a baseline run folder."""
    run = Path(run)
    _, config, sha, info = load_baseline(run)
    fitted = dict(config.fitted)
    overview = {
        "kind": "baseline",
        "method": config.method,
        "supervised": "yes (reads the private attribute labels)" if config.supervised else "no",
        "store": config.store,
        "fitted on": f"{config.split} split, {config.fit_rows}: {fitted.get('rows', '-')} rows of "
                     f"{fitted.get('videos', '-')} videos",
        "options": ", ".join(f"{k} {v}" for k, v in config.options().items()) or "-",
        "dims": f"{fitted.get('dims', '-')} of {info['dim']}",
        "seed": config.seed,
        "created": config.created,
        "aam sha256": sha,
    }
    return {"run": str(run), "kind": "baseline", "method": config.method, "label": config.label,
            "supervised": bool(config.supervised), "overview": overview, "fitted": fitted,
            "parameters": info["parameters"], "config": config.to_json()}
