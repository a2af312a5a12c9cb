"""Training the AAM: identity init, head init, then Eq. 7 with one of the budget modes.

    L = w_T * sum_t w_t L_t(h_t(f_A(z)))  -  w_B * L_budget  +  w_LC * d(f_A(z), z)

Budget modes (what L_budget is and who minimizes it) are strategy classes, one module each under
``anonymize/budgets/`` (the interface the trainer calls: ``anonymize.budgets.base``): ``direct``,
``adversarial``, ``supervised``, ``none`` on the static pairs (the paper and the authors' code), and
``cross-view``, ``bottleneck``, ``supervised-clips`` on the videos' full clips. Per step the trainer
draws the budget batch (two static clips of each video), runs the AAM on what the mode asks for (the
static pairs; one random full clip of each video), asks the mode for its privacy term, takes one
joint AdamW step for the AAM and the task heads, then lets the mode update its adversary.

Reproducibility: every random draw of an epoch (data order, clip choice, augmentation, dropout,
adversary restarts) comes from generators seeded by (seed, epoch, stream), and checkpoints are written
after each epoch, so ``--resume`` continues bit-exactly: N epochs straight and N/2 + N/2 resumed give
identical weights. What a resume may change, and the checks against the saved config, are in
``anonymize.resume``; the run folder's files in ``anonymize.checkpoint``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from anonymize import checkpoint as ckpt
from anonymize.budgets import BudgetContext, BudgetPair, BudgetStep, VideoClips, build_budget
from anonymize.budgets.base import (  # noqa: F401  (the stream constants are part of this module's API)
    STREAM_AUGMENT,
    STREAM_BUDGET,
    STREAM_BUDGET_CLIPS,
    STREAM_INIT,
    STREAM_RESTART,
    STREAM_TASK0,
    STREAM_TORCH,
    derived_seed,
    generator_for,
    group_means,
    train_split_std,
)
from anonymize.config import TrainConfig
from anonymize.data import (
    BudgetClipSource,
    PairSource,
    RowPairs,
    StreamingRows,
    buffer_chunks,
    epoch_order,
    open_rows,
    window_rows,
)
from anonymize.export import where
from anonymize.losses import latent_consistency, within_video_consistency
from anonymize.model import build_aam, count_parameters
from anonymize.resume import check_run_folder
from anonymize.utility import TaskBatch, UtilityTask
from anonymize.utility_tasks import build_task
from featstore.device import resolve_device
from data_manifests.errors import FeatstoreError
from featstore.store import EMBEDDINGS, ROW_KINDS, VIDEO_ATTRIBUTES, VIDEO_IDS, VIDEO_LABELS, Store
from featstore.store.location import is_url
from featstore.summary import attribute_problems, label_problems, nonfinite_problem

console = Console(stderr=True)
PROJECTION_BATCH_VIDEOS = 256  # videos per AAM call while fitting the output projection


def zero_residual_outputs(aam: nn.Module) -> None:
    """Make the attention AAM exactly the identity: zero the last layer of every residual branch."""
    for block in aam.blocks:
        nn.init.zeros_(block.attention.out_proj.weight)
        nn.init.zeros_(block.attention.out_proj.bias)
        if block.ffn is not None:
            nn.init.zeros_(block.ffn[-1].weight)
            nn.init.zeros_(block.ffn[-1].bias)


@dataclass
class TrainResult:
    run: Path
    epochs_done: int
    history: list[dict]
    aam_sha256: str


class Trainer:
    """Owns the modules, optimizers and data of one run; ``run()`` trains to ``config.epochs``."""

    def __init__(self, config: TrainConfig, show_progress: bool | None = None):
        self.config = config
        self.run_dir = Path(config.out)
        self.show_progress = config.progress if show_progress is None else show_progress
        self.device = resolve_device(config.device)
        self.store = Store.open(config.store)
        self.dim = self.store.dim
        refuse_unsound_rows(self.store)
        torch.manual_seed(derived_seed(config.seed, STREAM_INIT))
        self.aam = build_aam(self.dim, config.aam).to(self.device)
        self.tasks: list[UtilityTask] = []
        for spec in config.tasks:
            task_store = self.store if where(spec.store) == where(config.store) else Store.open(spec.store)
            if task_store is not self.store:
                refuse_unsound_rows(task_store)
            if task_store.dim != self.dim:
                raise FeatstoreError(f"task {spec.name!r}: store {spec.store} has dim {task_store.dim}, "
                                     f"the training store has {self.dim}")
            task = build_task(spec.name, task_store, spec.weight, config.row_source, config.stream_cache_chunks,
                              head=spec.head)
            if config.utility_target == "raw-head" and not task.keeps_raw_head:
                raise FeatstoreError(f"task {spec.name!r} cannot keep a raw head's outputs: --utility-target "
                                     f"raw-head works with the action task only")
            task.head.to(self.device)
            self.tasks.append(task)
        window = config.aam.context_window
        self.pair_sources = [PairSource(self.store, "static", source=config.row_source, window=window,
                                              cache_chunks=config.stream_cache_chunks)]
        if config.budget_inputs == "static+clips":
            self.pair_sources.append(PairSource(self.store, "clips", source=config.row_source, window=window,
                                                cache_chunks=config.stream_cache_chunks))
        self.static_std = self._static_std() if config.static_noise > 0 else None
        self.budget = build_budget(BudgetContext(self.dim, self.device, config, self.store,
                                                  len(self.pair_sources[0].videos)))
        self.clip_source = (BudgetClipSource(self.store, config.row_source, window, config.stream_cache_chunks)
                            if self.budget.uses_clips or config.w_within_video > 0 else None)
        self.video_labels = np.asarray(self.store.array(VIDEO_LABELS)[:], dtype=np.int64)
        lr = config.scaled_lr
        groups = [{"params": list(self.aam.parameters()), "lr": lr, "weight_decay": config.weight_decay}]
        for task in self.tasks:
            groups.append({"params": list(task.head.parameters()),
                           "lr": task.head_lr if task.head_lr is not None else lr,
                           "weight_decay": task.head_weight_decay if task.head_weight_decay is not None
                           else config.weight_decay})
        self.optimizer = torch.optim.AdamW(groups)
        self.base_lrs = [group["lr"] for group in groups]  # what config.lr_schedule scales in each epoch
        self.history: list[dict] = []
        self.epochs_done = 0
        self.initialized = False
        self.projection_info: dict | None = None  # what OutputProjection.fit kept, once it is fitted

    # ------------------------------------------------------------------ construction helpers
    def _offsets(self, kind: str) -> np.ndarray:
        return self.store.clip_offsets() if kind == "clips" else self.store.static_offsets()

    def _train_rows(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the train-split videos in the ``kind`` array, and the video of each row."""
        offsets = self._offsets(kind)
        videos = self.store.split_indices("train")
        rows = np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in videos] or [np.zeros(0, np.int64)])
        return rows, np.repeat(videos, offsets[videos + 1] - offsets[videos])

    def _static_std(self) -> torch.Tensor:
        """Per-dimension std of the train static clips, in one streaming pass (the noise scale)."""
        return train_split_std(self.store, "static").to(self.device)

    def modules(self) -> dict[str, nn.Module]:
        modules = {"aam": self.aam}
        modules.update({f"head.{task.name}": task.head for task in self.tasks})
        modules.update(self.budget.modules())
        return modules

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"main": self.optimizer, **self.budget.optimizers()}

    def parameter_counts(self) -> dict[str, int]:
        return {name: count_parameters(module) for name, module in self.modules().items()}

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        info = {"epoch": self.epochs_done, "initialized": self.initialized, "history": self.history,
                "parameters": self.parameter_counts(), "dim": self.dim}
        if self.projection_info is not None:
            info["output_projection"] = self.projection_info
        # the fitted projection is saved at the last epoch's number: a tensor file of its own name, so that a kill
        # between the tensor file and its pointer leaves the epoch's checkpoint whole
        ckpt.save_checkpoint(self.run_dir, self.modules(), self.optimizers(), info,
                             suffix="-projected" if self.projection_info is not None else "")

    def load(self) -> None:
        info = ckpt.load_checkpoint(self.run_dir, self.modules(), self.optimizers())
        self.epochs_done = int(info["epoch"])
        self.initialized = bool(info["initialized"])
        self.history = list(info["history"])
        self.projection_info = info.get("output_projection")

    # ------------------------------------------------------------------ initialization
    def identity_init(self) -> dict:
        """Train f_A to reproduce its input on the training store's train-split clips and static clips.

        In the temporal mode every row is the centre of the window of its video's consecutive rows that the
        training and the export give it (``window_rows``), and the loss is on the centre's output, so the
        identity is learnt for what the export returns: the clip's output inside its whole video.
        """
        config = self.config.identity
        if config.preset == "zero":
            zero_residual_outputs(self.aam)
            return {"preset": "zero"}
        loss_name, lr, epochs = config.resolved()
        if config.preset == "none" or epochs == 0:
            return {"preset": config.preset, "epochs": 0}
        kinds = ("clips", "static")
        sources = [open_rows(self.store, kind, self.config.row_source, self.config.stream_cache_chunks)
                   for kind in kinds]
        rows, owners = zip(*(self._train_rows(kind) for kind in kinds))
        offsets = [self._offsets(kind) for kind in kinds]
        which = np.concatenate([np.zeros(len(rows[0]), np.int64), np.ones(len(rows[1]), np.int64)])
        flat, flat_owners = np.concatenate(rows), np.concatenate(owners)
        context = self.config.aam.context_window
        groups = None
        if isinstance(sources[0], StreamingRows):  # block-shuffled order over the chunks of both arrays
            chunk_ids = [flat[which == kind] // sources[kind].chunk for kind in (0, 1)]
            groups = np.concatenate([chunk_ids[0], chunk_ids[1] + int(chunk_ids[0].max(initial=0)) + 1])
        optimizer = torch.optim.AdamW(self.aam.parameters(), lr=lr)
        generator = generator_for(self.config.seed, STREAM_INIT, 1)
        torch.manual_seed(derived_seed(self.config.seed, STREAM_INIT, 2))
        self.aam.train()

        def take(picked: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
            """(B, D) rows, or in the temporal mode (B, 2 * context + 1, D) windows around them and their mask."""
            batch = torch.empty(len(picked), *([2 * context + 1] if context else []), self.dim)
            mask = torch.empty(batch.shape[:2], dtype=torch.bool) if context else None
            for kind in (0, 1):
                mine = which[picked] == kind
                if not mine.any():
                    continue
                centres, into = flat[picked[mine]], torch.from_numpy(mine)
                if context:
                    window, valid = window_rows(offsets[kind], flat_owners[picked[mine]], centres, context)
                    batch[into] = sources[kind].take(window.reshape(-1)).reshape(*window.shape, -1)
                    mask[into] = torch.from_numpy(valid)
                else:
                    batch[into] = sources[kind].take(centres)
            return batch.to(self.device), None if mask is None else mask.to(self.device)

        def centre_error(batch: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            return latent_consistency(self._centre(self.aam(batch, mask)), self._centre(batch), loss_name)

        for _ in range(epochs):
            for picked in epoch_order(len(flat), config.batch_size, generator, groups, buffer_chunks(sources[0])):
                loss = centre_error(*take(picked))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        sample, sample_mask = take(np.arange(0, len(flat), max(1, len(flat) // 4096)))
        with torch.no_grad():
            self.aam.eval()
            centres = self._centre(sample)
            mse = float(nn.functional.mse_loss(self._centre(self.aam(sample, sample_mask)), centres))
            self.aam.train()
        return {"preset": config.preset, "loss": loss_name, "lr": lr, "epochs": epochs, "final_mse": mse,
                "relative_mse": mse / float(centres.var())}

    def head_init(self) -> dict:
        """Train each task head on non-anonymized features (the AAM is not involved)."""
        results = {}
        for index, task in enumerate(self.tasks):
            own_recipe = task.pretrain_head(self.device, derived_seed(self.config.seed, STREAM_INIT, 10 + index))
            if own_recipe is None:
                optimizer = torch.optim.AdamW(task.head.parameters(), lr=self.config.head_init_lr)
                task.head.train()
                torch.manual_seed(derived_seed(self.config.seed, STREAM_INIT, 10 + index))
                for epoch in range(self.config.head_init_epochs):
                    generator = generator_for(self.config.seed, STREAM_INIT, 100 + index, epoch)
                    for batch in task.epoch_batches(task.batch_size or self.config.batch_size, generator, 0):
                        batch = batch.to(self.device)
                        loss = task.loss(batch.embeddings, batch)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
            results[task.name] = {**(own_recipe or {}), **task.validate(lambda x, mask: x, self.device, 0)}
        return results

    # ------------------------------------------------------------------ one epoch
    def _augment(self, values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        config = self.config
        if config.static_noise > 0:
            noise = torch.randn(values.shape, generator=generator).to(self.device)
            values = values + config.static_noise * self.static_std * noise
        if config.static_feature_dropout > 0:
            keep = (torch.rand(values.shape, generator=generator) >= config.static_feature_dropout).to(self.device)
            values = values * keep / (1 - config.static_feature_dropout)
        return values

    def _centre(self, values: torch.Tensor) -> torch.Tensor:
        window = self.config.aam.context_window
        return values[:, window] if values.dim() == 3 else values

    def _budget_pairs(self, pairs: list[tuple[str, RowPairs]], augment: torch.Generator) -> list[BudgetPair]:
        """The step's pairs as the budget mode and latent consistency need them: the raw rows (static
        clips augmented) when either reads them, and their AAM outputs when either reads those."""
        anonymize_pairs = self.budget.static_inputs == "anonymized" or self.config.lc_inputs == "clips+static"
        if not anonymize_pairs and self.budget.static_inputs == "none":
            return []
        result = []
        for kind, pair in pairs:
            raw, outputs = [], []
            for values, mask in ((pair.first, pair.first_mask), (pair.second, pair.second_mask)):
                values = values.to(self.device)
                if kind == "static":
                    values = self._augment(values, augment)
                if anonymize_pairs:
                    outputs.append(self._centre(self.aam(values, None if mask is None else mask.to(self.device))))
                raw.append(self._centre(values))
            result.append(BudgetPair(kind, (raw[0], raw[1]), (outputs[0], outputs[1]) if anonymize_pairs else None,
                                     pair.attributes.to(self.device)))
        return result

    def _budget_clips(self, videos: np.ndarray, static_pairs: list[BudgetPair], attributes: torch.Tensor,
                      generator: torch.Generator) -> VideoClips:
        """For each video of the budget batch that has clips: one random full clip and its AAM output, or with
        ``budget_clips="video-mean"`` the mean of all its clips and the mean of their AAM outputs."""
        if self.config.budget_clips == "video-mean":
            positions, raw, anonymized, aam_rows = self._video_means(videos)
        else:
            positions, raw, anonymized = self._draw_clips(videos, generator)
            aam_rows = len(positions)
        picked = torch.from_numpy(positions).to(self.device)
        raw_static = static_pairs[0].raw[0][picked] if static_pairs else None
        labels = torch.from_numpy(self.video_labels[videos][positions]).to(self.device)
        return VideoClips(raw, anonymized, raw_static, attributes.to(self.device)[picked], labels, aam_rows)

    def _draw_clips(self, videos: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(positions in ``videos`` of the videos that have clips, one random raw clip of each, its AAM output)."""
        positions, values, mask = self.clip_source.draw(videos, generator)
        values = values.to(self.device)
        out = self.aam(values, None if mask is None else mask.to(self.device))
        return positions, self._centre(values), self._centre(out)

    def _video_means(self, videos: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, int]:
        """(positions in ``videos`` of the videos that have clips, the mean of each one's raw clips, the mean of
        their AAM outputs, the clips read): a video as the attackers' video-level scoring sees it."""
        positions, values, mask, owner = self.clip_source.every_clip(videos)
        values = values.to(self.device)
        out = self.aam(values, None if mask is None else mask.to(self.device))
        owner = torch.from_numpy(owner).to(self.device)
        return (positions, group_means(self._centre(values), owner, len(positions)),
                group_means(self._centre(out), owner, len(positions)), len(owner))

    def _within_video_term(self, step: BudgetStep, videos: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """``within_video_consistency`` of the budget clips (drawn here when the mode draws none) and a second
        random clip of the same videos."""
        if step.clips is not None and self.config.budget_clips == "one":
            first_raw, first_anonymized = step.clips.raw, step.clips.anonymized
        else:
            _, first_raw, first_anonymized = self._draw_clips(videos, generator)
        _, second_raw, second_anonymized = self._draw_clips(videos, generator)
        return within_video_consistency((first_anonymized, second_anonymized), (first_raw, second_raw))

    def _task_iterators(self, epoch: int) -> list[Iterator[TaskBatch]]:
        def cycle(index: int, task: UtilityTask) -> Iterator[TaskBatch]:
            generator = generator_for(self.config.seed, epoch, STREAM_TASK0 + index)
            while True:  # a task with fewer steps than the budget source starts another pass
                produced = False
                for batch in task.epoch_batches(task.batch_size or self.config.batch_size, generator,
                                                self.config.aam.context_window):
                    produced = True
                    yield batch
                if not produced:
                    raise FeatstoreError(f"task {task.name!r} produced no batches")

        return [cycle(i, task) for i, task in enumerate(self.tasks)]

    def train_epoch(self, epoch: int) -> dict:
        config = self.config
        self.budget.on_epoch_start(epoch)
        torch.manual_seed(derived_seed(config.seed, epoch, STREAM_TORCH))
        budget_generator = generator_for(config.seed, epoch, STREAM_BUDGET)
        augment_generator = generator_for(config.seed, epoch, STREAM_AUGMENT)
        clip_generator = generator_for(config.seed, epoch, STREAM_BUDGET_CLIPS)
        task_iterators = self._task_iterators(epoch)
        lr_factor = config.lr_factor(epoch)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * lr_factor
        self.aam.train()
        for task in self.tasks:
            task.head.train()
        sums: dict[str, float] = {}
        steps = rows = 0
        started = time.perf_counter()
        static_epoch = self.pair_sources[0].epoch_with_videos(config.batch_size, budget_generator)
        clip_pair_epochs = [iter(source.epoch(config.batch_size, budget_generator)) for source in self.pair_sources[1:]]
        for videos, static_pairs in static_epoch:
            pairs = [("static", static_pairs)]
            for iterator in clip_pair_epochs:
                following = next(iterator, None)
                if following is not None:
                    pairs.append(("clips", following))
            step = BudgetStep(self._budget_pairs(pairs, augment_generator), None)
            if self.budget.uses_clips:
                step.clips = self._budget_clips(videos, step.pairs, static_pairs.attributes, clip_generator)
            privacy, adversary_inputs = self.budget.privacy_term(step)
            within = (self._within_video_term(step, videos, clip_generator) if config.w_within_video > 0
                      else torch.zeros((), device=self.device))
            lc_pieces = []
            if config.lc_inputs == "clips+static":
                for pair in step.pairs:
                    if pair.kind == "static":
                        lc_pieces.extend(zip(pair.anonymized, pair.raw))
            utility = torch.zeros((), device=self.device)
            task_losses = {}
            for task, iterator in zip(self.tasks, task_iterators):
                batch = next(iterator).to(self.device)
                out = self.aam(batch.embeddings, batch.mask)
                loss = task.loss(self.budget.utility_input(out), batch)
                utility = utility + task.weight * loss
                task_losses[task.name] = float(loss.detach())
                if batch.mask is None or batch.centre is not None:
                    lc_pieces.append((batch.clips(out), batch.clips(batch.embeddings)))
                else:
                    lc_pieces.append((out[batch.mask], batch.embeddings[batch.mask]))
                rows += batch.embeddings.shape[0]
            lc = sum(latent_consistency(a, r, config.lc_distance) for a, r in lc_pieces) / max(1, len(lc_pieces))
            total = (config.w_utility * utility + config.w_budget * privacy + config.w_lc * lc
                     + config.w_within_video * within)
            loss_value = float(total.detach())
            if not math.isfinite(loss_value):  # stop before the optimizer writes NaN weights
                raise FeatstoreError(f"epoch {epoch + 1}, step {steps + 1}: the training loss is {loss_value} "
                                     "(not finite); the last saved epoch is kept: try a lower --lr")
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            for task in self.tasks:
                if task.grad_clip is not None:
                    nn.utils.clip_grad_norm_(task.head.parameters(), task.grad_clip)
            self.optimizer.step()
            adversary_loss = self.budget.adversary_step(adversary_inputs)
            rows += sum(2 * pair.first.shape[0] for _, pair in pairs)
            if step.clips is not None:
                rows += step.clips.aam_rows
            step_values = {"loss": float(total.detach()), "utility": float(utility.detach()),
                           "privacy": float(privacy.detach()), "lc": float(lc.detach()), "adversary": adversary_loss,
                           **{f"task.{k}": v for k, v in task_losses.items()}}
            if config.w_within_video > 0:
                step_values["within_video"] = float(within.detach())
            for key, value in step_values.items():
                sums[key] = sums.get(key, 0.0) + value
            steps += 1
        seconds = time.perf_counter() - started
        record = {key: value / max(1, steps) for key, value in sums.items()}
        record.update(epoch=epoch + 1, steps=steps, seconds=seconds, clips_per_s=rows / max(seconds, 1e-9))
        if config.lr_schedule != "constant":
            record["lr_factor"] = lr_factor
        return record

    @torch.no_grad()
    def fit_output_projection(self) -> dict:
        """Fit the AAM's ``OutputProjection`` (floor, rank and centre) to its outputs on the training store's
        train-split clips (each clip's output inside its whole video in the temporal mode, as the export computes
        it): one pass over the clips (the budget's clip source when the run has one), accumulating the output mean and
        covariance in float64."""
        config = self.config
        context = config.aam.context_window
        source = self.clip_source or BudgetClipSource(self.store, config.row_source, context, config.stream_cache_chunks)
        videos = self.store.split_indices("train")
        total = torch.zeros(self.dim, dtype=torch.float64)
        products = torch.zeros(self.dim, self.dim, dtype=torch.float64)
        count = 0
        self.aam.eval()
        for start in range(0, len(videos), PROJECTION_BATCH_VIDEOS):
            _, clips, mask, _ = source.every_clip(videos[start : start + PROJECTION_BATCH_VIDEOS])
            out = self.aam(clips.to(self.device), None if mask is None else mask.to(self.device))
            out = (out[:, context] if context else out).double().cpu()
            total += out.sum(0)
            products += out.T @ out
            count += len(out)
        self.aam.train()
        mean = total / max(1, count)
        covariance = products / max(1, count) - torch.outer(mean, mean)
        kept = self.aam.output_projection.fit(mean, covariance, config.aam.output_floor, config.aam.output_rank)
        return {"floor": config.aam.output_floor, "rank": config.aam.output_rank, "kept": kept, "dim": self.dim,
                "rows": count, "centred": config.aam.output_centre}

    @torch.no_grad()
    def validate(self) -> dict:
        self.aam.eval()
        results = {}
        for task in self.tasks:
            metrics = task.validate(lambda x, mask: self.aam(x, mask), self.device, self.config.aam.context_window)
            results.update({f"{task.name}.{k}": v for k, v in metrics.items()})
        self.aam.train()
        return results

    # ------------------------------------------------------------------ the whole run
    def run(self) -> TrainResult:
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.initialized:
            identity = self.identity_init()
            heads = self.head_init()
            self.initialized = True
            self.history.append({"epoch": 0, "identity_init": identity, "head_init": heads, "val": self.validate()})
            self.save()
        if config.utility_target == "raw-head":
            for task in self.tasks:
                task.keep_raw_head()
        projection = self.aam.output_projection
        if projection is not None and self.epochs_done < config.epochs and self.projection_info is not None:
            projection.reset()  # a finished run resumed for more epochs trains on the network's own output
            self.projection_info = None
        columns = (TextColumn("[bold]anonymize"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=not self.show_progress) as progress:
            bar = progress.add_task("train", total=config.epochs, completed=self.epochs_done, status="")
            while self.epochs_done < config.epochs:
                record = self.train_epoch(self.epochs_done)
                self.epochs_done += 1
                if config.validate_every and (self.epochs_done % config.validate_every == 0
                                              or self.epochs_done == config.epochs):
                    record["val"] = self.validate()
                self.history.append(record)
                self.save()
                progress.update(bar, completed=self.epochs_done, status=format_record(record))
        if projection is not None and self.projection_info is None:
            self.projection_info = self.fit_output_projection()
            self.save()
        return TrainResult(self.run_dir, self.epochs_done, self.history, ckpt.read_checkpoint_info(self.run_dir)["aam_sha256"])


def refuse_unsound_rows(store: Store) -> None:
    """Labels and attributes in range of the names and every embedding finite, or one line naming the
    store and the first problem (a NaN row would make every loss NaN; a label past the class names
    would crash a head)."""
    ids = [str(video_id) for video_id in store.array(VIDEO_IDS).tolist()]
    problems = (label_problems(store.array(VIDEO_LABELS), ids, store.class_names)
                + attribute_problems(store.array(VIDEO_ATTRIBUTES), ids, store.attribute_names))
    for kind in ROW_KINDS:
        problems += [problem for problem in [nonfinite_problem(EMBEDDINGS[kind], store.embeddings(kind))] if problem]
    if problems:
        raise FeatstoreError(f"{store.path}: {problems[0]} (a damaged store; `featstore verify` lists every problem)")


def format_record(record: dict) -> str:
    parts = [f"loss {record['loss']:.3f}", f"util {record['utility']:.3f}", f"priv {record['privacy']:.3f}",
             f"lc {record['lc']:.4f}"]
    if not math.isnan(record.get("adversary", math.nan)):
        parts.append(f"adv {record['adversary']:.3f}")
    parts.append(f"{record['clips_per_s']:.0f} clips/s")
    for key, value in record.get("val", {}).items():
        parts.append(f"{key} {value:.3f}")
    return "  ".join(parts)


def train(config: TrainConfig, resume: bool = False, show_progress: bool | None = None) -> TrainResult:
    """Train a new run in ``config.out``, or (``resume``) continue it from its last checkpoint.

    A resumed run's training settings must equal the saved ones, except ``anonymize.resume.RESUMABLE_CHANGES``.
    """
    check_run_folder(config, resume)
    run = Path(config.out)
    trainer = Trainer(config, show_progress)
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FeatstoreError(f"cannot create --run {run}: {error.strerror}") from None
    if resume and (run / ckpt.CHECKPOINT_JSON).is_file():
        trainer.load()
    config.save(run / ckpt.CONFIG_FILE)
    return trainer.run()
