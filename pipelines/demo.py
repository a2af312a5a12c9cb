"""The demo recipe: built-in synthetic dataset -> feature stores -> anonymizer -> anonymized stores -> report.

Runs on the CPU in minutes and needs no download:

1. generate the synthetic dataset (if absent);
2. extract every part with the demo encoder (``demo-c3d``, pretrained on separate synthetic data);
3. train the anonymizer on the trimmed-clip store with the default objective (``independence``: the
   anonymized full clips made independent of their video's raw static clip; no attribute labels; its
   settings were chosen on this store, see ``DemoConfig`` and docs/anonymize.md);
4. export an anonymized copy of every store;
5. the trade-off points: the default objective at other budget weights, the paper's objective (direct
   NT-Xent on static clips) and the unsupervised latent baselines (``anonymize baseline``);
6. ``evaluate report``: every supported protocol raw vs anonymized (worst-case attackers, full clips
   first), the inversion attacks, the trade-off with each method's own front.

Each stage reuses what an earlier run of the same recipe left: extraction resumes, a finished
training run is resumed (a no-op), baselines are fitted again (deterministic: the same weights and
hash), exports and the report are rewritten.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from rich.console import Console

from anonymize.baselines import BaselineConfig, fit_baseline, is_baseline_run
from anonymize.budgets import budget_class, budget_modes
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
from featstore.synth import STYLE_SEEDS, STYLES, SynthConfig, generate_synthetic, manifest_path, part_name

SYNTH_PARTS = ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images")


# The unsupervised baselines the demo adds as trade-off points, with their settings on the 192-d demo-c3d store.
DEMO_BASELINES = {
    "lda-action": {},
    "pca": {"components": 16},
    "random-projection": {"components": 32},
    "gaussian-noise": {"noise_fraction": 1.0},
}


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    data_root: Optional[str] = None  # None: data/synth (data/synth-<style> for another style)
    model: str = "demo-c3d"
    seed: int = 0
    # The synthetic dataset's style: "default" (every default below is chosen on it) or "variant" (other
    # colours, textures, sizes, speeds and seeds: the untuned dataset the results are also reported on).
    style: str = "default"
    # The default objective and its settings, chosen on this (demo) store; the untuned variant dataset
    # (featstore synth --style variant) reports them unchanged (docs/anonymize.md, "Does it anonymize?").
    budget_mode: str = "independence"
    train_epochs: int = 300
    # the demo store's 140 training videos in one batch: the independence term is a kernel statistic of
    # the batch, estimated best on the largest one
    train_batch_size: int = 140
    train_lr: float = 1e-3  # at train_batch_size (no linear scaling)
    train_w_lc: float = 0.1
    train_w_budget: float = 10.0
    sweep_budgets: list[float] = field(default_factory=lambda: [3.0])  # extra w_B runs of the default objective
    # The paper's objective (direct NT-Xent on static clips) as a trade-off point, with the settings that make
    # it move on a 140-video store (the paper's 512 / 1e-4 / 100 leave it unchanged: docs/anonymize.md).
    paper_objective: bool = True
    paper_epochs: int = 100
    paper_batch_size: int = 32
    paper_lr: float = 1e-3
    paper_w_lc: float = 10.0
    baselines: list[str] = field(default_factory=lambda: list(DEMO_BASELINES))
    # epochs (AD: steps) of every probe, attacker and head the report trains; None: each protocol's preset
    eval_epochs: Optional[int] = None
    device: str = "auto"

    def __post_init__(self):
        if self.data_root is None:
            self.data_root = "data/synth" if self.style == "default" else f"data/synth-{self.style}"
        checks = [
            (self.style in STYLES, f"style must be one of {list(STYLES)}, got {self.style!r}"),
            (self.budget_mode in budget_modes(), f"budget_mode must be one of {budget_modes()}, got {self.budget_mode!r}"),
            (not budget_class(self.budget_mode).supervised if self.budget_mode in budget_modes() else True,
             f"budget_mode {self.budget_mode!r} reads attribute labels; the demo's default objective is self-supervised"),
            (self.train_epochs >= 1, f"train_epochs must be >= 1, got {self.train_epochs}"),
            (self.train_batch_size >= 2, f"train_batch_size must be >= 2, got {self.train_batch_size}"),
            (self.train_lr > 0, f"train_lr must be > 0, got {self.train_lr}"),
            (self.train_w_lc >= 0, f"train_w_lc must be >= 0, got {self.train_w_lc}"),
            (self.train_w_budget >= 0, f"train_w_budget must be >= 0, got {self.train_w_budget}"),
            (all(w >= 0 for w in self.sweep_budgets), f"sweep budget weights must be >= 0, got {self.sweep_budgets}"),
            (len({f"{w:g}" for w in self.sweep_budgets}) == len(self.sweep_budgets),
             f"sweep budget weights must differ, got {self.sweep_budgets}"),
            (len(set(self.baselines)) == len(self.baselines), f"each baseline may appear once, got {self.baselines}"),
            (self.paper_epochs >= 1 and self.paper_batch_size >= 2 and self.paper_lr > 0 and self.paper_w_lc >= 0,
             "paper objective settings: epochs >= 1, batch size >= 2, lr > 0, w_lc >= 0"),
            (set(self.baselines) <= set(DEMO_BASELINES),
             f"baselines must be among {list(DEMO_BASELINES)}, got {self.baselines}"),
            (self.eval_epochs is None or self.eval_epochs >= 1, f"eval_epochs must be >= 1, got {self.eval_epochs}"),
        ]
        for ok, message in checks:
            if not ok:
                raise FeatstoreError(message)

    @property
    def parts(self) -> list[str]:
        """The dataset names of the four parts in this style (e.g. synthetic-variant-tad)."""
        return [part_name(part, self.style) for part in SYNTH_PARTS]

    @property
    def synth_config(self) -> SynthConfig:
        """The dataset: the demo's seed offset by the style's own seed (another style shares no draw)."""
        return SynthConfig(seed=self.seed + STYLE_SEEDS[self.style], style=self.style)

    def store_path(self, part: str) -> Path:
        name = "raw" if part == SYNTH_PARTS[0] else part.removeprefix("synthetic-")
        return Path(self.out) / f"{name}.zarr"

    def anon_path(self, part: str) -> Path:
        return Path(self.out) / "anon" / self.store_path(part).name

    @property
    def budgets(self) -> list[float]:
        """The default objective's budget weights: the main run's first, then the sweep's."""
        return [self.train_w_budget] + [w for w in self.sweep_budgets if w != self.train_w_budget]

    def run_path(self, w_budget: float) -> Path:
        return Path(self.out) / ("aam" if w_budget == self.train_w_budget else f"sweep-wb{w_budget:g}")

    @property
    def paper_run_path(self) -> Path:
        return Path(self.out) / "paper-objective"

    def baseline_path(self, method: str) -> Path:
        return Path(self.out) / f"baseline-{method}"

    def anonymizer_config(self, w_budget: float, show_progress: bool = False) -> TrainConfig:
        """One run of the default objective."""
        return TrainConfig(store=str(self.store_path(SYNTH_PARTS[0])), out=str(self.run_path(w_budget)),
                           budget_mode=self.budget_mode, w_budget=w_budget, w_lc=self.train_w_lc,
                           epochs=self.train_epochs, batch_size=self.train_batch_size, lr=self.train_lr,
                           lr_reference_batch=self.train_batch_size, seed=self.seed, device=self.device,
                           progress=show_progress)

    def paper_config(self, show_progress: bool = False) -> TrainConfig:
        """The paper's objective (direct NT-Xent budget on static clips, w_B 1)."""
        return TrainConfig(store=str(self.store_path(SYNTH_PARTS[0])), out=str(self.paper_run_path),
                           budget_mode="direct", w_budget=1.0, w_lc=self.paper_w_lc, epochs=self.paper_epochs,
                           batch_size=self.paper_batch_size, lr=self.paper_lr,
                           lr_reference_batch=self.paper_batch_size, seed=self.seed, device=self.device,
                           progress=show_progress)

    def training_runs(self, show_progress: bool = False) -> list[TrainConfig]:
        runs = [self.anonymizer_config(w, show_progress) for w in self.budgets]
        return runs + ([self.paper_config(show_progress)] if self.paper_objective else [])


@dataclass
class DemoResult:
    extracted: dict[str, ExtractResult]
    run: Path
    report: Path


def run_demo(config: DemoConfig, console: Console | None = None, show_progress: bool = True) -> DemoResult:
    console = console or Console()
    out = Path(config.out)
    check_earlier_runs(config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(asdict(config), indent=2))

    data_root = Path(config.data_root)
    if not manifest_path(data_root, SYNTH_PARTS[0]).is_file():  # manifest files keep the default part names
        console.rule(f"1. synthetic dataset ({config.style} style)")
        generate_synthetic(data_root, config.synth_config, show_progress=show_progress)
    resolve_dataset(config.parts[0], data_root)  # validates every file is there

    extracted = {}
    for part, dataset in zip(SYNTH_PARTS, config.parts):
        console.rule(f"2. extract {dataset}")
        extract_config = ExtractConfig(model=config.model, dataset=dataset, data_root=str(data_root),
                                       out=str(config.store_path(part)), seed=config.seed)
        extracted[part] = extract(extract_config, show_progress=show_progress)
        problems = verify_store(extracted[part].store)
        if problems:
            raise FeatstoreError(f"{extracted[part].store} failed verification: {problems[0]}")
    from featstore.cli import print_summary

    print_summary(summarize(Store.open(config.store_path(SYNTH_PARTS[0]))))
    for part, result in extracted.items():
        console.print(f"{part:>25}: {result.store}  {result.n_videos} videos, {result.n_clips} clips, "
                      f"{result.n_static} static clips, {result.n_failed} failed, {result.seconds:.1f}s")

    runs = config.training_runs(show_progress)
    for index, train_config in enumerate(runs):
        title = (f"3. anonymizer ({config.budget_mode}, w_B = {train_config.w_budget:g})" if index == 0 else
                 f"5. trade-off run: {train_config.budget_mode}, w_B = {train_config.w_budget:g}")
        console.rule(title)
        resume = (Path(train_config.out) / CONFIG_FILE).is_file()
        train(train_config, resume=resume, show_progress=show_progress)
        if index == 0:
            console.rule("4. export anonymized stores")
            for part in SYNTH_PARTS:
                result = export_store(config.run_path(config.train_w_budget), config.store_path(part),
                                      config.anon_path(part), device=config.device, overwrite=True)
                console.print(f"{part:>17}: {result.out}  {result.rows} rows, {result.seconds:.1f}s")
    for method in config.baselines:
        console.rule(f"5. baseline: {method}")
        fit_demo_baseline(config, method)

    console.rule("6. report")
    epochs = config.eval_epochs
    sweep = [str(c.out) for c in runs] + [str(config.baseline_path(m)) for m in config.baselines]
    report_config = report_protocol.ReportConfig(
        raw=[str(config.store_path(p)) for p in SYNTH_PARTS], anon=[str(config.anon_path(p)) for p in SYNTH_PARTS],
        run=str(config.run_path(config.train_w_budget)), sweep=sweep,
        ar_epochs=epochs or 250, privacy_epochs=epochs or 100, vp_epochs=epochs or 100,
        attack_inverter_epochs=epochs or 100, tad_epochs=epochs, ad_steps=epochs, seed=config.seed,
        device=config.device)
    report_dir = out / "report"
    report = report_protocol.run(report_config, report_dir, show_progress=show_progress)
    report_protocol.print_table1(report)
    console.print(f"report: {report_dir / report_protocol.REPORT_FILE}")
    return DemoResult(extracted, config.run_path(config.train_w_budget), report_dir / report_protocol.REPORT_FILE)


def fit_demo_baseline(config: DemoConfig, method: str) -> None:
    """Fit one baseline on the trimmed-clip store; one fitted earlier with the same settings is kept."""
    baseline = BaselineConfig(method=method, store=str(config.store_path(SYNTH_PARTS[0])),
                              out=str(config.baseline_path(method)), seed=config.seed, **DEMO_BASELINES[method])
    fit_baseline(baseline, overwrite=is_baseline_run(config.baseline_path(method)))


DATA_SETTINGS = ("style", "data_root", "model", "seed")  # what the stores in ``out`` were extracted from


def check_earlier_runs(config: DemoConfig) -> None:
    """An earlier demo's stores and anonymizer runs in ``out`` are reused; refuse (before any work) when they
    were made from other data or trained with other settings."""
    saved_config = Path(config.out) / "demo_config.json"
    if saved_config.is_file():
        try:
            saved = json.loads(saved_config.read_text())
        except json.JSONDecodeError as exc:
            raise FeatstoreError(f"{saved_config} is not valid JSON ({exc}): choose another --out") from exc
        changed = [key for key in DATA_SETTINGS if key in saved and saved[key] != asdict(config)[key]]
        if changed:
            raise FeatstoreError(f"{config.out} holds a demo made with other data settings ({', '.join(changed)}); "
                                 "choose another --out or remove that folder")
    for method in config.baselines:
        folder = config.baseline_path(method)
        if (folder / CONFIG_FILE).is_file() and not is_baseline_run(folder):
            raise FeatstoreError(f"{folder} holds an anonymizer training run, not a baseline: move it away")
    for train_config in config.training_runs():
        saved = Path(train_config.out) / CONFIG_FILE
        if saved.is_file():
            changed = changed_settings(TrainConfig.load(saved), train_config)
            if changed:
                raise FeatstoreError(f"{saved.parent} holds an anonymizer trained with other settings "
                                     f"({', '.join(changed)}); choose another --out or remove that folder")
