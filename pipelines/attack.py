"""Inversion attacks on a trained anonymizer (the paper's Table 8): can an attacker undo the AAM?

Inputs: the raw store, the anonymized store exported from it (``anonymize export``) and the run
folder of the AAM that made it. The stores must have the same rows (same videos, same offsets) and the
anonymized store's provenance must name this run's AAM weights (SHA-256) and this raw store.

Threat model. The attacker can query the anonymizer with the *training split*: for every training
video it holds (raw, anonymized) pairs of all clip and static rows. The victim's data is the *test
split*, of which the attacker observes only the anonymized rows (those that are scored: every static
clip and each test video's evenly spaced clips; in the AAM's temporal mode every clip, since a clip's
output depends on its neighbours). Two attacks recover raw embeddings:

- ``blackbox``: no access to the AAM's weights. An inversion network (``Inverter``: standardized
  input, an affine path initialized to the identity plus an MLP whose last layer starts at zero) is
  trained with MSE on the training pairs (anonymized -> raw), the epoch with the lowest MSE on a
  held-out share of the training videos is kept, and it is applied to the test rows.
- ``whitebox``: the AAM's weights are known and frozen. For every observed test row ``y`` an
  embedding ``z`` (initialized at ``y``) is optimized with Adam (cosine-decayed learning rate) to
  minimize ``||AAM(z) - y||^2``; all rows in batched tensors, each row's loss independent of the
  others (sum over rows), so the result does not depend on the batch size. In the AAM's temporal
  mode a whole video's sequence is optimized jointly through the temporal attention.

Scoring. Heads trained on the *raw* training features (never on anonymized or recovered ones) score
the test rows of every variant: raw, anonymized, black-box recovered, white-box recovered.
- action: the ``ar`` linear probe; video-level top-1 over 5 evenly spaced clips (softmax averaged);
- attributes: the ``privacy`` standard attacker (2-layer MLP, validation-selected epoch); cMAP on
  static clips (``attribute_kind="static"``, default) or, ``attribute_kind="clips"``, the ``vp`` form
  (full clips, AP at each of 5 evenly spaced clip positions, mean over positions) which is the
  paper's Table 8 setting (VP-HMDB51 / VP-UCF101).
Chance: 1 / classes for top-1; the mean positive rate of the test targets for cMAP (a random
ranking's AP). The inversion quality (MSE and cosine to the true raw embedding) is reported as well,
with the anonymized rows themselves as the do-nothing reference.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from anonymize.checkpoint import readable_run
from anonymize.export import LoadedAAM, load_trained_aam, store_fingerprint
from evaluate.data import StoreData
from evaluate.tables import console, err_console, format_value
from evaluate.training import (
    AllRows,
    Stopwatch,
    TrainOutcome,
    carve_validation,
    device_of,
    masked_bce,
    mlp_head,
    predict,
    seeded_module,
    timing_block,
    train_head,
)
from evaluate.metrics import mean_defined, per_attribute_ap, positive_rates, topk_accuracy, video_probabilities
from evaluate.protocols._attribute_attack import named, position_aggregates, validation_groups, validation_split
from evaluate.protocols._classifier import train_linear_classifier
from data_manifests.errors import FeatstoreError
from featstore.store import CLIP_OFFSETS, STATIC_OFFSETS, VIDEO_IDS, VIDEO_SPLITS, Store
from pipelines.attack_command import AttackConfig

VARIANTS = ("raw", "anonymized", "blackbox", "whitebox")
ROW_TITLES = {"raw": "raw", "anonymized": "anonymized", "blackbox": "black-box inversion",
              "whitebox": "white-box inversion", "chance": "chance"}


# ---------------------------------------------------------------------------------------------- inputs
def check_attack_inputs(raw: Store, anon: Store, aam: LoadedAAM, run: str | Path) -> None:
    """One-line errors unless ``anon`` is ``raw`` exported by the AAM of ``run``, row for row."""
    record = anon.anonymizer
    if not record:
        raise FeatstoreError(f"{anon.path} is not an anonymized store (its provenance names no anonymizer): "
                             "--store takes the output of `anonymize export`")
    if raw.anonymizer:
        raise FeatstoreError(f"--raw-store {raw.path} is itself an anonymized store: pass the raw store it was "
                             "exported from")
    if record.get("aam_sha256") != aam.sha256:
        raise FeatstoreError(f"{anon.path} was made by another anonymizer (aam sha256 "
                             f"{str(record.get('aam_sha256'))[:12]}) than the one in {run} ({aam.sha256[:12]})")
    if record.get("source_fingerprint") != store_fingerprint(raw):
        raise FeatstoreError(f"{anon.path} was exported from {record.get('source_store')}, not from --raw-store "
                             f"{raw.path} (store fingerprints differ)")
    dim = int(aam.info["dim"])
    if raw.dim != dim or anon.dim != dim:
        raise FeatstoreError(f"embedding dims differ: raw {raw.dim}, anonymized {anon.dim}, anonymizer {dim}")
    for name in (CLIP_OFFSETS, STATIC_OFFSETS, VIDEO_IDS, VIDEO_SPLITS):
        if not np.array_equal(raw.array(name), anon.array(name)):
            raise FeatstoreError(f"{raw.path} and {anon.path} do not have the same rows ({name} differs)")


# ---------------------------------------------------------------------------------------------- black box
class Inverter(nn.Module):
    """The black-box attacker's inversion network: anonymized embedding -> raw embedding.

    Both sides are standardized with the attacker's training statistics, so one learning rate fits
    every encoder's scale. ``affine(u) + mlp(u)`` with the affine path starting at the identity and
    the MLP's last layer at zero: the network starts as "the anonymized embedding is the raw one"
    (the AAM is trained to stay close to its input) and learns the correction.
    """

    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        for name in ("in_mean", "out_mean"):
            self.register_buffer(name, torch.zeros(dim))
        for name in ("in_std", "out_std"):
            self.register_buffer(name, torch.ones(dim))
        self.affine = nn.Linear(dim, dim)
        blocks: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        self.mlp = None
        if layers:
            last = nn.Linear(width, dim)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.mlp = nn.Sequential(*blocks, last)
        with torch.no_grad():
            self.affine.weight.copy_(torch.eye(dim))
            self.affine.bias.zero_()

    def set_statistics(self, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        with torch.no_grad():
            for prefix, values in (("in", inputs), ("out", outputs)):
                values = values.float()
                getattr(self, f"{prefix}_mean").copy_(values.mean(0))
                getattr(self, f"{prefix}_std").copy_(values.std(0, unbiased=False).clamp_min(1e-6))

    def forward(self, anonymized: torch.Tensor) -> torch.Tensor:
        u = (anonymized - self.in_mean) / self.in_std
        v = self.affine(u) if self.mlp is None else self.affine(u) + self.mlp(u)
        return v * self.out_std + self.out_mean


def train_inverter(anonymized: torch.Tensor, raw: torch.Tensor, groups: np.ndarray, config: AttackConfig,
                   show_progress: bool = False) -> tuple[Inverter, TrainOutcome, dict]:
    """Fit an ``Inverter`` on (anonymized, raw) row pairs; ``groups`` (one id per row, e.g. its video)
    decides the held-out share, so that no video is both fitted and used for selection."""
    if len(anonymized) != len(raw) or len(anonymized) != len(groups):
        raise ValueError("anonymized, raw and groups must have one entry per pair")
    dim = anonymized.shape[1]
    hidden = config.inverter_hidden or 2 * dim
    unique_groups = np.unique(groups)
    fit_groups, val_groups = carve_validation(len(unique_groups), config.inverter_val_fraction, config.seed)
    fit_rows = np.flatnonzero(np.isin(groups, unique_groups[fit_groups]))
    val_rows = torch.from_numpy(np.flatnonzero(np.isin(groups, unique_groups[val_groups]))).to(anonymized.device)
    model = seeded_module(lambda: Inverter(dim, hidden, config.inverter_layers), config.seed, anonymized.device)
    fit_index = torch.from_numpy(fit_rows).to(anonymized.device)
    model.set_statistics(anonymized[fit_index], raw[fit_index])

    def validation_score(m: nn.Module) -> float:  # higher is better: minus the held-out MSE
        return -float((predict(m, anonymized, val_rows) - raw[val_rows].float()).pow(2).mean())

    outcome = train_head(model, anonymized, raw, AllRows.of(fit_rows, fit_rows), nn.functional.mse_loss,
                         config.inverter_settings(), select=validation_score, description="black-box inverter",
                         show_progress=show_progress)
    details = {"hidden": hidden, "layers": config.inverter_layers, "n_fit_pairs": int(len(fit_rows)),
               "n_val_pairs": int(len(val_rows)), "selected_epoch": outcome.selected_epoch,
               "val_mse": -outcome.selection_scores[outcome.selected_epoch - 1],
               "final_train_loss": outcome.losses[-1]}
    return model, outcome, details


# ---------------------------------------------------------------------------------------------- white box
def _steps_progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err_console, disable=not enabled, transient=True)


def _fit_preimage(forward: Callable[[torch.Tensor], torch.Tensor], observed: torch.Tensor, valid: torch.Tensor,
                  scale: float, steps: int, lr: float, advance: Callable[[], None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimize z = observed + scale * offset (offset from 0) so that forward(z) matches ``observed``.

    The loss is the sum over valid rows of each row's mean squared error, so a row's gradient (and,
    Adam being per coordinate, its whole trajectory) does not depend on the other rows of the batch.
    """
    offset = torch.zeros_like(observed, requires_grad=True)
    optimizer = torch.optim.Adam([offset], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    weight = valid.float()
    with torch.enable_grad():
        for _ in range(steps):
            residual = (forward(observed + scale * offset) - observed).pow(2).mean(-1)
            loss = (residual * weight).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            advance()
    with torch.no_grad():
        recovered = observed + scale * offset
        residual = (forward(recovered) - observed).pow(2).mean(-1)
    return recovered.detach(), residual


def rms_scale(observed: torch.Tensor) -> float:
    """The typical size of one coordinate of the observed embeddings (the white-box step unit)."""
    value = float(observed.float().pow(2).mean().sqrt()) if observed.numel() else 1.0
    return value if value > 0 else 1.0


def whitebox_invert(aam: nn.Module, observed: torch.Tensor, steps: int, lr: float, batch_rows: int,
                    show_progress: bool = False, description: str = "white-box") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row white-box inversion of a per-clip AAM: (N, D) observed outputs -> (N, D) preimages and
    each row's final output MSE ``mean((AAM(z) - y)^2)``."""
    observed = observed.float()
    scale = rms_scale(observed)
    recovered, residuals = torch.empty_like(observed), observed.new_empty(len(observed))
    n_batches = math.ceil(len(observed) / batch_rows)
    with _steps_progress(show_progress) as progress:
        task = progress.add_task(description, total=n_batches * steps)
        for start in range(0, len(observed), batch_rows):
            chunk = observed[start : start + batch_rows]
            valid = torch.ones(len(chunk), dtype=torch.bool, device=chunk.device)
            z, residual = _fit_preimage(aam, chunk, valid, scale, steps, lr, lambda: progress.advance(task))
            recovered[start : start + len(chunk)], residuals[start : start + len(chunk)] = z, residual
    return recovered, residuals


def whitebox_invert_sequences(aam: nn.Module, observed: torch.Tensor, counts: np.ndarray, steps: int, lr: float,
                              batch_rows: int, show_progress: bool = False,
                              description: str = "white-box") -> tuple[torch.Tensor, torch.Tensor]:
    """White-box inversion of a temporal AAM: ``observed`` holds consecutive videos' rows (``counts``
    rows each); every video's sequence is optimized jointly (padded, masked) through the AAM."""
    observed = observed.float()
    counts = np.asarray(counts, dtype=np.int64)
    if int(counts.sum()) != len(observed):
        raise ValueError("counts must add up to the observed rows")
    scale = rms_scale(observed)
    starts = np.cumsum(counts) - counts
    recovered, residuals = torch.empty_like(observed), observed.new_empty(len(observed))
    videos = np.flatnonzero(counts > 0)
    longest = int(counts.max(initial=1))
    per_batch = max(1, batch_rows // longest)  # videos per batch: at most batch_rows padded clip slots
    with _steps_progress(show_progress) as progress:
        task = progress.add_task(description, total=math.ceil(len(videos) / per_batch) * steps)
        for first in range(0, len(videos), per_batch):
            batch = videos[first : first + per_batch]
            length = int(counts[batch].max())
            positions = np.arange(length)[None, :]
            valid_np = positions < counts[batch][:, None]
            rows_np = np.where(valid_np, starts[batch][:, None] + positions, 0)
            rows = torch.from_numpy(rows_np).to(observed.device)
            valid = torch.from_numpy(valid_np).to(observed.device)
            sequences = observed[rows] * valid[..., None]  # padding slots are zeros, masked out of attention

            z, residual = _fit_preimage(lambda z, mask=valid: aam(z, mask), sequences, valid, scale, steps, lr, lambda: progress.advance(task))
            flat_rows = rows[valid]
            recovered[flat_rows], residuals[flat_rows] = z[valid], residual[valid]
    return recovered, residuals


def is_temporal(aam: LoadedAAM) -> bool:
    return aam.config.aam.context_window > 0


# ---------------------------------------------------------------------------------------------- scoring
def inversion_quality(recovered: torch.Tensor, raw: torch.Tensor) -> dict:
    """Mean squared error (over rows and coordinates) and mean cosine similarity to the true raw rows."""
    if len(raw) == 0:
        return {"mse": math.nan, "cosine": math.nan, "n_rows": 0}
    recovered, raw = recovered.float(), raw.float()
    return {"mse": float((recovered - raw).pow(2).mean()),
            "cosine": float(nn.functional.cosine_similarity(recovered, raw, dim=1).mean()),
            "n_rows": int(len(raw))}


def positions_in(rows: np.ndarray, subset_rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Where each of ``rows`` (store rows) sits in ``subset_rows`` (a list of distinct store rows)."""
    lookup = np.full(n_rows, -1, dtype=np.int64)
    lookup[subset_rows] = np.arange(len(subset_rows))
    found = lookup[rows]
    if (found < 0).any():
        raise ValueError("some rows asked for are not in the subset")
    return found


def score_actions(data: StoreData, config: AttackConfig, variants: dict[str, torch.Tensor],
                  test_clip_rows: np.ndarray, show_progress: bool) -> tuple[dict, TrainOutcome]:
    """The ``ar`` linear probe trained on raw training clips; top-1 of every variant's test clips."""
    labels = data.videos.label
    train_videos = data.split_videos(config.train_split, "clips")
    train_videos = train_videos[labels[train_videos] >= 0]
    test_videos = data.split_videos(config.test_split, "clips")
    test_videos = test_videos[labels[test_videos] >= 0]
    model, outcome = train_linear_classifier(data, train_videos, config.action_settings(), show_progress,
                                             "action head (raw)")
    positions = positions_in(data.evenly_spaced_rows(test_videos, config.eval_clips), test_clip_rows,
                             data.embeddings["clips"].shape[0])
    top1 = {}
    for name, clips in variants.items():
        logits = predict(model, clips, positions).float().cpu().numpy()
        top1[name] = topk_accuracy(video_probabilities(logits), labels[test_videos], ks=(1,))[1]
    details = {"n_classes": len(data.class_names), "n_train_videos": int(len(train_videos)),
               "n_test_videos": int(len(test_videos)), "final_train_loss": outcome.losses[-1]}
    return {"top1": top1, "chance": 1.0 / len(data.class_names), **details}, outcome


def score_attributes(data: StoreData, config: AttackConfig, variants: dict[str, torch.Tensor],
                     test_rows: np.ndarray, show_progress: bool) -> tuple[dict, TrainOutcome]:
    """The privacy protocols' standard attacker trained on raw training rows; cMAP of every variant.

    The training is ``_attribute_attack.run_attacker(..., "standard")`` (same seeds, split and
    selection); it is written out here because that function evaluates its model once and does not
    hand it back, and this protocol scores four variants with the same model.
    """
    kind, preset = config.attribute_kind, config.attribute_preset()
    settings = preset.train_settings()
    names = data.attribute_names
    attributes = data.videos.attributes.astype(np.int64)
    features = data.embeddings[kind]
    targets = data.tensor(attributes)
    train_videos = data.split_videos(config.train_split, kind)
    test_videos = data.split_videos(config.test_split, kind)

    def scorer(videos: np.ndarray, source: torch.Tensor, rows_in_source: Callable[[np.ndarray], np.ndarray]):
        """model -> {"cmap", "per_attribute"} on ``videos``, reading their rows from ``source``."""
        if kind == "static":
            rows, owner = data.rows_of(videos, "static")
            sample_targets = attributes[videos[owner]]
            positions = torch.from_numpy(rows_in_source(rows)).to(data.device)

            def evaluate(model: nn.Module) -> dict:
                ap = per_attribute_ap(predict(model, source, positions).float().cpu().numpy(), sample_targets)
                return {"cmap": mean_defined(ap), "per_attribute": ap}
        else:
            positions = torch.from_numpy(rows_in_source(data.evenly_spaced_rows(videos, config.eval_clips))).to(data.device)

            def evaluate(model: nn.Module) -> dict:
                scores = predict(model, source, positions).float().cpu().numpy()
                aggregates = position_aggregates(scores, attributes[videos])
                return {"cmap": aggregates["cmap_mean"], "per_attribute": aggregates["per_attribute_mean"]}
        return evaluate

    split = validation_split(train_videos, targets, validation_groups(data.videos.subject, train_videos, preset.val_unit),
                             preset.val_fraction, settings.seed)
    fit_videos = train_videos[split.fit]
    validation = scorer(train_videos[split.val], features, lambda rows: rows)
    model = seeded_module(mlp_head(features.shape[1], len(names)), settings.seed, data.device)
    sampler = data.all_rows_sampler(fit_videos, kind) if kind == "static" else data.random_row_sampler(fit_videos, kind)
    outcome = train_head(model, features, targets, sampler, masked_bce, settings,
                         select=lambda m: validation(m)["cmap"], description="attribute head (raw)",
                         show_progress=show_progress)
    n_rows = features.shape[0]
    cmap, per_attribute = {}, {}
    with torch.no_grad():
        for name, source in variants.items():
            result = scorer(test_videos, source, lambda rows: positions_in(rows, test_rows, n_rows))(model)
            cmap[name], per_attribute[name] = result["cmap"], named(result["per_attribute"], names)
    if kind == "static":
        _, owner = data.rows_of(test_videos, "static")
        rates = positive_rates(attributes[test_videos[owner]])
    else:
        rates = positive_rates(attributes[test_videos])
    return {"cmap": cmap, "chance": mean_defined(rates), "per_attribute": per_attribute,
            "positive_rate": named(rates, names), "kind": kind, "selected_epoch": outcome.selected_epoch,
            "n_fit_videos": int(len(fit_videos)), "n_test_videos": int(len(test_videos))}, outcome


def victim_rows(data: StoreData, videos: np.ndarray, kind: str, eval_clips: int, whole_videos: bool) -> np.ndarray:
    """The sorted ``kind`` rows of ``videos`` that the attacks invert: every static clip; of the clips,
    only the evenly spaced ones that are scored, unless ``whole_videos`` (the temporal AAM: a clip's
    output depends on its neighbours, so a video's whole sequence is inverted together)."""
    if kind == "clips" and not whole_videos:
        videos = videos[data.counts("clips")[videos] > 0]
        return np.unique(data.evenly_spaced_rows(videos, eval_clips)) if len(videos) else np.zeros(0, np.int64)
    return data.rows_of(videos, kind)[0]


def action_note(data: StoreData, config: AttackConfig) -> str | None:
    """Why the action column cannot be scored on this store, or None when it can."""
    if len(data.class_names) < 2:
        return f"no action column: the dataset has {len(data.class_names)} action classes"
    labels = data.videos.label
    for split in (config.train_split, config.test_split):
        videos = data.store.split_indices(split)
        videos = videos[(data.counts("clips")[videos] > 0) & (labels[videos] >= 0)]
        if len(videos) == 0:
            return f"no action column: no labelled {split!r} videos with clips"
    return None


def attribute_note(data: StoreData, config: AttackConfig) -> str | None:
    """Why the attribute column cannot be scored on this store, or None when it can."""
    kind = config.attribute_kind
    if not data.attribute_names or data.videos.attributes.shape[1] == 0:
        return "no attribute column: the dataset has no private attributes"
    counts = data.counts(kind)
    test_videos = None
    for split in (config.train_split, config.test_split):
        videos = data.store.split_indices(split)
        videos = videos[counts[videos] > 0]
        if len(videos) < (2 if split == config.train_split else 1):  # the head needs a fit and a validation video
            return f"no attribute column: too few {split!r} videos with {kind} embeddings"
        test_videos = videos
    if kind == "static":
        targets = data.videos.attributes[np.repeat(test_videos, counts[test_videos])]
    else:
        targets = data.videos.attributes[test_videos]
    rates = positive_rates(targets)
    if np.all(np.isnan(rates) | (rates == 0)):
        return "no attribute column: no private attribute has a positive test sample (cMAP undefined)"
    return None


# ---------------------------------------------------------------------------------------------- protocol
def run(raw_store: Store, anon_store: Store, run_dir: str | Path, config: AttackConfig, *,
        show_progress: bool = False) -> dict:
    """Both inversion attacks and the Table 8 scores (see the module docs). ``run_dir``: a local folder or an
    fsspec URL."""
    watch = Stopwatch(device_of(config.device))
    device = watch.device
    with readable_run(run_dir) as local_run:
        aam = load_trained_aam(local_run, str(device))
    check_attack_inputs(raw_store, anon_store, aam, run_dir)
    aam.module.eval()
    for parameter in aam.module.parameters():  # the white-box attacker optimizes inputs, never the AAM
        parameter.requires_grad_(False)

    raw = StoreData(raw_store, device, kinds=("clips", "static"))
    anon = StoreData(anon_store, device, kinds=("clips", "static"))
    notes = [note for note in (action_note(raw, config), attribute_note(raw, config)) if note]
    score_action = action_note(raw, config) is None
    score_attribute = attribute_note(raw, config) is None
    if not (score_action or score_attribute):
        raise FeatstoreError(f"{raw_store.path}: nothing to score the attacks with ({'; '.join(notes)})")
    kinds = sorted(({"clips"} if score_action else set()) | ({config.attribute_kind} if score_attribute else set()))

    # The attacker's queries: every clip and static row of the training videos.
    train_videos = raw.store.split_indices(config.train_split)
    pair_rows = {kind: raw.rows_of(train_videos, kind) for kind in ("clips", "static")}
    if sum(len(rows) for rows, _ in pair_rows.values()) == 0:
        raise FeatstoreError(f"{raw_store.path}: no {config.train_split!r} rows for the attacker to query")
    pairs_anon = torch.cat([anon.embeddings[kind][torch.from_numpy(rows).to(device)] for kind, (rows, _) in pair_rows.items()])
    pairs_raw = torch.cat([raw.embeddings[kind][torch.from_numpy(rows).to(device)] for kind, (rows, _) in pair_rows.items()])
    pair_videos = np.concatenate([train_videos[owner] for _, owner in pair_rows.values()])
    inverter, inverter_outcome, inverter_details = train_inverter(pairs_anon.float(), pairs_raw.float(), pair_videos,
                                                                  config, show_progress)
    del pairs_anon, pairs_raw

    # The victim's rows, anonymized: the test rows that are scored.
    test_videos = raw.store.split_indices(config.test_split)
    test_rows = {kind: victim_rows(raw, test_videos, kind, config.eval_clips, is_temporal(aam)) for kind in kinds}
    index = {kind: torch.from_numpy(rows).to(device) for kind, rows in test_rows.items()}
    variants = {"raw": {kind: raw.embeddings[kind][index[kind]].float() for kind in kinds},
                "anonymized": {kind: anon.embeddings[kind][index[kind]].float() for kind in kinds}}
    variants["blackbox"] = {kind: predict(inverter, observed, torch.arange(len(observed), device=device))
                            for kind, observed in variants["anonymized"].items()}
    # One white-box run over every kind's rows: rows (per-clip mode) or videos' sequences (temporal
    # mode, clips and static clips of a video being separate sequences) never interact.
    whitebox_started = Stopwatch(device)
    observed = torch.cat([variants["anonymized"][kind] for kind in kinds])
    if is_temporal(aam):
        counts = np.concatenate([raw.counts(kind)[test_videos] for kind in kinds])
        recovered, residual = whitebox_invert_sequences(aam.module, observed, counts, config.whitebox_steps,
                                                        config.whitebox_lr, config.whitebox_batch_rows, show_progress)
    else:
        recovered, residual = whitebox_invert(aam.module, observed, config.whitebox_steps, config.whitebox_lr,
                                              config.whitebox_batch_rows, show_progress)
    whitebox_seconds = whitebox_started.seconds()
    sizes = [len(test_rows[kind]) for kind in kinds]
    variants["whitebox"] = dict(zip(kinds, torch.split(recovered, sizes)))
    residuals = {kind: float(part.mean()) if len(part) else math.nan for kind, part in zip(kinds, torch.split(residual, sizes))}
    quality = {name: {kind: inversion_quality(variants[name][kind], variants["raw"][kind]) for kind in kinds}
               for name in VARIANTS[1:]}
    for kind in kinds:
        quality["whitebox"][kind]["output_mse"] = residuals[kind]

    table = {name: {"action_top1": math.nan, "attribute_cmap": math.nan} for name in (*VARIANTS, "chance")}
    outcomes = [inverter_outcome]
    action = attribute = None
    if score_action:
        action, outcome = score_actions(raw, config, {n: v["clips"] for n, v in variants.items()}, test_rows["clips"],
                                        show_progress)
        outcomes.append(outcome)
        for name in VARIANTS:
            table[name]["action_top1"] = action["top1"][name]
        table["chance"]["action_top1"] = action["chance"]
    if score_attribute:
        kind = config.attribute_kind
        attribute, outcome = score_attributes(raw, config, {n: v[kind] for n, v in variants.items()}, test_rows[kind],
                                              show_progress)
        outcomes.append(outcome)
        for name in VARIANTS:
            table[name]["attribute_cmap"] = attribute["cmap"][name]
        table["chance"]["attribute_cmap"] = attribute["chance"]
    return {
        "table": table,
        "inversion_quality": quality,
        "blackbox": inverter_details,
        "whitebox": {"steps": config.whitebox_steps, "lr": config.whitebox_lr,
                     "mode": "temporal (whole-video sequences)" if is_temporal(aam) else "per clip",
                     "output_mse": residuals, "seconds": whitebox_seconds},
        "action": action,
        "attribute": attribute,
        "anonymizer": {"run": str(run_dir), "aam_sha256": aam.sha256, "architecture": aam.config.aam.architecture,
                       "mode": aam.config.aam.mode},
        "n_attacker_videos": int(len(train_videos)),
        "n_victim_videos": int(len(test_videos)),
        "notes": notes,
        "timing": timing_block(watch.seconds(), outcomes),
    }


def print_attack_table(title: str, metrics: dict) -> None:
    """The Table 8 form: rows raw / anonymized / black-box / white-box / chance; scores and inversion quality."""
    table = Table("", "action top-1", "attribute cMAP", "MSE to raw", "cosine to raw", title=title,
                  title_justify="left")
    kinds = list(next(iter(metrics["inversion_quality"].values())))
    # the quality columns use the clips when scored (the action rows), else the attribute rows
    kind = "clips" if "clips" in kinds else kinds[0]
    for name in (*VARIANTS, "chance"):
        scores = metrics["table"][name]
        quality = metrics["inversion_quality"].get(name, {}).get(kind)
        if name == "raw":
            mse, cosine = "0", "1"
        elif quality is None:
            mse = cosine = ""
        else:
            mse, cosine = format_value(quality["mse"]), format_value(quality["cosine"])
        cells = [format_value(scores[key]) if not math.isnan(scores[key]) else "-"
                 for key in ("action_top1", "attribute_cmap")]
        table.add_row(ROW_TITLES[name], *cells, mse, cosine)
    console.print(table)
    console.print(f"inversion quality on the test {kind} rows; white-box output MSE "
                  f"{format_value(metrics['whitebox']['output_mse'].get(kind))}; black-box held-out MSE "
                  f"{format_value(metrics['blackbox']['val_mse'])} (epoch {metrics['blackbox']['selected_epoch']})")
    for note in metrics["notes"]:
        console.print(f"[yellow]note:[/] {note}")
