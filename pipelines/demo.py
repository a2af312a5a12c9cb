"""The demo recipe: built-in synthetic dataset -> feature stores -> anonymizer -> anonymized stores -> report.

Runs on the CPU in minutes and needs no download:

1. generate the synthetic dataset (if absent);
2. extract every part with the demo encoder (``demo-c3d``, pretrained on separate synthetic data);
3. train the anonymizer on the trimmed-clip store with the default objective (``independence``: the
   anonymized full clips made independent of their video's raw static clip; no attribute labels; its
   settings were chosen on this store, see ``DemoConfig`` in
   pipelines/demo_config.py and docs/anonymize.md);
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
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from anonymize.baselines import BaselineConfig, fit_baseline, is_baseline_run
from anonymize.checkpoint import CONFIG_FILE
from anonymize.config import TrainConfig
from anonymize.export import export_store
from anonymize.resume import changed_settings
from anonymize.train import train
from data_manifests.registry import resolve_dataset
from pipelines import report as report_protocol
from data_manifests.errors import FeatstoreError
from featstore.extract import ExtractConfig, ExtractResult, extract
from featstore.store import Store
from featstore.summary import summarize, verify_store
from data_manifests.synth import generate_synthetic, manifest_path
from pipelines.demo_config import DEMO_BASELINES, SYNTH_PARTS, DemoConfig


@dataclass
class DemoResult:
    extracted: dict[str, ExtractResult]
    run: Path
    report: Path


def run_demo(config: DemoConfig, console: Console | None = None, show_progress: bool = True) -> DemoResult:
    console = console or Console()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise FeatstoreError(f"--out {out} is a file; it names the demo's output folder")
    check_earlier_runs(config)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FeatstoreError(f"cannot create --out {out}: {error.strerror}") from None
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
        seed=config.seed, device=config.device,
        # --eval-epochs overrides every protocol's epochs; without it each keeps the report's default (its preset)
        **({} if epochs is None else dict(ar_epochs=epochs, privacy_epochs=epochs, vp_epochs=epochs,
                                          attack_inverter_epochs=epochs, tad_epochs=epochs, ad_steps=epochs)))
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
