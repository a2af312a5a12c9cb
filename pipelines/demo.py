"""The demo recipe: built-in synthetic dataset -> feature stores -> anonymizer -> anonymized stores -> report.

Runs on the CPU in minutes and needs no download:

1. generate the synthetic dataset (if absent);
2. extract every part with the demo encoder (``demo-c3d``, pretrained on separate synthetic data);
3. train the anonymizer on the trimmed-clip store (the paper's objective; batch, learning rate and w_LC
   for a 140-video store, see ``DemoConfig``);
4. export an anonymized copy of every store;
5. train a small sweep over the budget weight w_B (the trade-off curve);
6. ``evaluate report``: every supported protocol raw vs anonymized, the inversion attacks, the trade-off.

Each stage reuses what an earlier run of the same recipe left: extraction resumes, a finished
training run is resumed (a no-op), exports and the report are rewritten.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from rich.console import Console

from anonymize.checkpoint import CONFIG_FILE
from anonymize.config import TrainConfig
from anonymize.export import export_store
from anonymize.train import changed_settings, train
from data_manifests.registry import resolve_dataset
from evaluate.protocols import report as report_protocol
from featstore.errors import FeatstoreError
from featstore.extract import ExtractConfig, ExtractResult, extract
from featstore.store import Store
from featstore.summary import summarize, verify_store
from featstore.synth import SynthConfig, generate_synthetic, manifest_path

SYNTH_PARTS = ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images")


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    data_root: str = "data/synth"
    model: str = "demo-c3d"
    seed: int = 0
    train_epochs: int = 100  # the anonymizer's epochs (paper: 100)
    # Not the paper's 512 / 1e-4 / 100: on the demo's 140 training videos an epoch is then one step and
    # the AAM barely moves in 100 steps (docs/anonymize.md, "Does it anonymize?").
    train_batch_size: int = 32
    train_lr: float = 1e-3  # at train_batch_size (no linear scaling)
    train_w_lc: float = 10.0
    sweep_budgets: list[float] = field(default_factory=lambda: [0.25, 4.0])  # extra w_B runs besides w_B = 1
    # epochs (AD: steps) of every probe, attacker and head the report trains; None: each protocol's preset
    eval_epochs: Optional[int] = None
    device: str = "auto"

    def __post_init__(self):
        if self.train_epochs < 1:
            raise FeatstoreError(f"train_epochs must be >= 1, got {self.train_epochs}")
        if self.train_batch_size < 1:
            raise FeatstoreError(f"train_batch_size must be >= 1, got {self.train_batch_size}")
        if not self.train_lr > 0:
            raise FeatstoreError(f"train_lr must be > 0, got {self.train_lr}")
        if not self.train_w_lc >= 0:
            raise FeatstoreError(f"train_w_lc must be >= 0, got {self.train_w_lc}")
        if self.eval_epochs is not None and self.eval_epochs < 1:
            raise FeatstoreError(f"eval_epochs must be >= 1, got {self.eval_epochs}")
        if any(not w >= 0 for w in self.sweep_budgets):
            raise FeatstoreError(f"sweep budget weights must be >= 0, got {self.sweep_budgets}")

    def store_path(self, part: str) -> Path:
        name = "raw" if part == "synthetic" else part.removeprefix("synthetic-")
        return Path(self.out) / f"{name}.zarr"

    def anon_path(self, part: str) -> Path:
        return Path(self.out) / "anon" / self.store_path(part).name

    def run_path(self, w_budget: float) -> Path:
        return Path(self.out) / ("aam" if w_budget == 1.0 else f"sweep-wb{w_budget:g}")


@dataclass
class DemoResult:
    extracted: dict[str, ExtractResult]
    run: Path
    report: Path


def run_demo(config: DemoConfig, console: Console | None = None, show_progress: bool = True) -> DemoResult:
    console = console or Console()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    budgets = [1.0] + [w for w in config.sweep_budgets if w != 1.0]
    check_earlier_runs(config, budgets)
    (out / "demo_config.json").write_text(json.dumps(asdict(config), indent=2))

    data_root = Path(config.data_root)
    if not manifest_path(data_root, SYNTH_PARTS[0]).is_file():
        console.rule("1. synthetic dataset")
        generate_synthetic(data_root, SynthConfig(seed=config.seed), show_progress=show_progress)
    resolve_dataset(SYNTH_PARTS[0], data_root)  # validates every file is there

    extracted = {}
    for part in SYNTH_PARTS:
        console.rule(f"2. extract {part}")
        extract_config = ExtractConfig(model=config.model, dataset=part, data_root=str(data_root),
                                       out=str(config.store_path(part)), seed=config.seed)
        extracted[part] = extract(extract_config, show_progress=show_progress)
        problems = verify_store(extracted[part].store)
        if problems:
            raise FeatstoreError(f"{extracted[part].store} failed verification: {problems[0]}")
    from featstore.cli import print_summary

    print_summary(summarize(Store.open(config.store_path(SYNTH_PARTS[0]))))
    for part, result in extracted.items():
        console.print(f"{part:>17}: {result.store}  {result.n_videos} videos, {result.n_clips} clips, "
                      f"{result.n_static} static clips, {result.n_failed} failed, {result.seconds:.1f}s")

    for index, w_budget in enumerate(budgets):
        console.rule(f"3. anonymizer (w_B = {w_budget:g})" if index == 0 else f"5. sweep run w_B = {w_budget:g}")
        train_anonymizer(config, w_budget, show_progress)
        if index == 0:
            console.rule("4. export anonymized stores")
            for part in SYNTH_PARTS:
                result = export_store(config.run_path(1.0), config.store_path(part), config.anon_path(part),
                                      device=config.device, overwrite=True)
                console.print(f"{part:>17}: {result.out}  {result.rows} rows, {result.seconds:.1f}s")

    console.rule("6. report")
    epochs = config.eval_epochs
    report_config = report_protocol.ReportConfig(
        raw=[str(config.store_path(p)) for p in SYNTH_PARTS], anon=[str(config.anon_path(p)) for p in SYNTH_PARTS],
        run=str(config.run_path(1.0)), sweep=[str(config.run_path(w)) for w in budgets],
        ar_epochs=epochs or 250, privacy_epochs=epochs or 100, vp_epochs=epochs or 100,
        attack_inverter_epochs=epochs or 100, tad_epochs=epochs, ad_steps=epochs, seed=config.seed,
        device=config.device)
    report_dir = out / "report"
    report = report_protocol.run(report_config, report_dir, show_progress=show_progress)
    report_protocol.print_table1(report)
    console.print(f"report: {report_dir / report_protocol.REPORT_FILE}")
    return DemoResult(extracted, config.run_path(1.0), report_dir / report_protocol.REPORT_FILE)


def anonymizer_config(config: DemoConfig, w_budget: float, show_progress: bool) -> TrainConfig:
    return TrainConfig(store=str(config.store_path(SYNTH_PARTS[0])), out=str(config.run_path(w_budget)),
                       w_budget=w_budget, w_lc=config.train_w_lc, epochs=config.train_epochs,
                       batch_size=config.train_batch_size, lr=config.train_lr,
                       lr_reference_batch=config.train_batch_size, seed=config.seed, device=config.device,
                       progress=show_progress)


def check_earlier_runs(config: DemoConfig, budgets: list[float]) -> None:
    """An earlier demo's anonymizer runs in ``out`` are resumed; refuse (before any work) if their settings differ."""
    for w_budget in budgets:
        saved = config.run_path(w_budget) / CONFIG_FILE
        if saved.is_file():
            changed = changed_settings(TrainConfig.load(saved), anonymizer_config(config, w_budget, False))
            if changed:
                raise FeatstoreError(f"{saved.parent} holds an anonymizer trained with other settings "
                                     f"({', '.join(changed)}); choose another --out or remove that folder")


def train_anonymizer(config: DemoConfig, w_budget: float, show_progress: bool) -> None:
    """Train (or finish) one anonymizer run on the trimmed-clip store; a finished run is reused as it is."""
    resume = (config.run_path(w_budget) / CONFIG_FILE).is_file()
    train(anonymizer_config(config, w_budget, show_progress), resume=resume, show_progress=show_progress)
