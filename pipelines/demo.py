"""The demo recipe: built-in synthetic dataset -> feature stores for each part -> summaries.

Runs on the CPU in a few minutes. Later stages (train, export, evaluate, report) join this recipe
as they land.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from data_manifests.registry import resolve_dataset
from featstore.extract import ExtractConfig, ExtractResult, extract
from featstore.store import Store
from featstore.summary import summarize, verify_store
from featstore.synth import SynthConfig, generate_synthetic, manifest_path

SYNTH_PARTS = ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images")


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    data_root: str = "data/synth"
    model: str = "tiny-vit"
    seed: int = 0

    def store_path(self, part: str) -> Path:
        name = "raw" if part == "synthetic" else part.removeprefix("synthetic-")
        return Path(self.out) / f"{name}.zarr"


def run_demo(config: DemoConfig, console: Console | None = None, show_progress: bool = True) -> dict[str, ExtractResult]:
    console = console or Console()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(asdict(config), indent=2))

    data_root = Path(config.data_root)
    if not manifest_path(data_root, SYNTH_PARTS[0]).is_file():
        console.rule("1. synthetic dataset")
        generate_synthetic(data_root, SynthConfig(seed=config.seed), show_progress=show_progress)
    resolve_dataset(SYNTH_PARTS[0], data_root)  # validates every file is there

    results = {}
    for part in SYNTH_PARTS:
        console.rule(f"2. extract {part}")
        extract_config = ExtractConfig(model=config.model, dataset=part, data_root=str(data_root),
                                       out=str(config.store_path(part)), seed=config.seed)
        results[part] = extract(extract_config, show_progress=show_progress)
        problems = verify_store(results[part].store)
        if problems:
            raise RuntimeError(f"{results[part].store} failed verification: {problems[0]}")

    console.rule("3. summary")
    from featstore.cli import print_summary

    print_summary(summarize(Store.open(config.store_path(SYNTH_PARTS[0]))))
    for part, result in results.items():
        console.print(f"{part:>17}: {result.store}  {result.n_videos} videos, {result.n_clips} clips, "
                      f"{result.n_static} static clips, {result.n_failed} failed, {result.seconds:.1f}s")
    return results
