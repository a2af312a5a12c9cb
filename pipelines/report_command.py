"""The ``evaluate report`` command and its settings, ``ReportConfig``: what ``evaluate report --help`` reads.

The report itself (every protocol, numpy, matplotlib) is ``pipelines.report`` (its docstring describes it), imported
when the command runs, so that the help loads no heavy library; ``pipelines.report`` re-exports these names.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer

from evaluate.options import config_option, progress_option, protocol_option, store_option
from evaluate.settings import (
    ATTACKER_EPOCHS,
    DATA_PANEL,
    OUTPUT_PANEL,
    PROBE_EPOCHS,
    check,
    device_setting,
    seed_setting,
)

RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
CONFIG_FILE = "report_config.json"


@dataclass
class ReportConfig:
    ar_epochs: int = PROBE_EPOCHS
    privacy_epochs: int = ATTACKER_EPOCHS
    vp_epochs: int = ATTACKER_EPOCHS
    tad_epochs: Optional[int] = None  # None: the tad protocol's preset
    ad_steps: Optional[int] = None  # None: the ad protocol's preset
    # AD heads per store (their mean): one head's AUC on a few test videos swings with its seed (docs/heads.md)
    ad_seeds: int = 3
    # vp on label shuffles of the anonymized store: the floor its worst case can come down to (docs/evaluate.md)
    vp_null_permutations: int = 5
    attack_inverter_epochs: int = 100
    attack_whitebox_steps: int = 500
    seed: int = seed_setting()
    device: str = device_setting()
    raw: list[str] = field(default_factory=list)
    anon: list[str] = field(default_factory=list)
    run: Optional[str] = None
    sweep: list[str] = field(default_factory=list)

    def __post_init__(self):
        from featstore.exporters import local_output
        from featstore.store import Location

        check(len(self.raw) >= 1, "give at least one --raw-store and its --store")
        check(len(self.raw) == len(self.anon), f"--raw-store and --store pair up in order: got {len(self.raw)} "
                                               f"--raw-store and {len(self.anon)} --store")
        for name in ("ar_epochs", "privacy_epochs", "vp_epochs", "attack_inverter_epochs", "attack_whitebox_steps"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        check(self.tad_epochs is None or self.tad_epochs >= 1, f"tad_epochs must be >= 1, got {self.tad_epochs}")
        check(self.ad_steps is None or self.ad_steps >= 1, f"ad_steps must be >= 1, got {self.ad_steps}")
        check(self.ad_seeds >= 1, f"ad_seeds must be >= 1, got {self.ad_seeds}")
        check(self.vp_null_permutations >= 0, f"vp_null_permutations must be >= 0, got {self.vp_null_permutations}")
        for sweep_run in self.sweep:  # a path (checked when read), or a URL (pipelines.tradeoff.local_run copies it)
            check(local_output(sweep_run) is not None or Location(sweep_run).exists(),
                  f"--sweep {sweep_run} is not a run folder")
        if self.run is not None:
            local = local_output(self.run)
            check(local.is_dir() if local is not None else Location(self.run).exists(),
                  f"--run {self.run} is not a run folder")


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        raw_store: list[str] = store_option("--raw-store", "--raw", help="A raw store, a path or an fsspec URL "
                                                                         "(repeat; pairs with --store in order)."),
        store: list[str] = store_option("--store", "--anon", help="The store exported from the matching --raw-store "
                                                                  "(repeat)."),
        run_dir: Optional[str] = typer.Option(None, "--run", help="The anonymizer run (a path or an fsspec URL): adds "
                                                                  "the inversion attacks; not given: none.",
                                              rich_help_panel=DATA_PANEL),
        sweep: list[str] = typer.Option([], "--sweep", help="Sweep run folders (paths or fsspec URLs): adds the "
                                                            "trade-off (repeat).",
                                        rich_help_panel=DATA_PANEL),
        ar_epochs: int = protocol_option(ReportConfig.ar_epochs, "AR probe epochs (the default is the official "
                                                                 "preset)."),
        privacy_epochs: int = protocol_option(ReportConfig.privacy_epochs, "Attribute attacker epochs (the default "
                                                                           "is the official preset)."),
        vp_epochs: int = protocol_option(ReportConfig.vp_epochs, "Temporal attribute attacker epochs."),
        tad_epochs: Optional[int] = protocol_option(ReportConfig.tad_epochs, "TAD head epochs; not given: the "
                                                                             "protocol's preset."),
        ad_steps: Optional[int] = protocol_option(ReportConfig.ad_steps, "AD head steps; not given: the protocol's "
                                                                         "preset."),
        ad_seeds: int = protocol_option(ReportConfig.ad_seeds, "AD heads trained per store (seeds --seed, --seed + 1, "
                                                               "...): the AUC is their mean."),
        vp_null_permutations: int = protocol_option(ReportConfig.vp_null_permutations,
                                                    "Label shuffles for the null floor of each anonymized store's "
                                                    "full-clip leakage (0 = none; each costs one attacker suite)."),
        attack_inverter_epochs: int = protocol_option(ReportConfig.attack_inverter_epochs,
                                                      "Black-box inverter epochs."),
        attack_whitebox_steps: int = protocol_option(ReportConfig.attack_whitebox_steps,
                                                     "White-box optimization steps."),
        seed: int = config_option(ReportConfig, "seed"),
        device: str = config_option(ReportConfig, "device"),
        out: Path = typer.Option(Path("report"), help="Output folder (report.md, results.json, figures).",
                                 rich_help_panel=OUTPUT_PANEL),
        progress: bool = progress_option(),
        as_json: bool = typer.Option(False, "--json", help=f"Print the report (what {RESULTS_FILE} holds) on stdout "
                                                           "instead of the table.", rich_help_panel=OUTPUT_PANEL),
    ) -> None:
        """Run every protocol the stores support, raw vs anonymized; write report.md, results.json and figures."""
        from evaluate.results import as_json_text, json_safe
        from evaluate.tables import console, err_console
        from pipelines.report import print_table1, run

        config = ReportConfig(ar_epochs=ar_epochs, privacy_epochs=privacy_epochs, vp_epochs=vp_epochs,
                              tad_epochs=tad_epochs, ad_steps=ad_steps, ad_seeds=ad_seeds,
                              vp_null_permutations=vp_null_permutations, attack_inverter_epochs=attack_inverter_epochs,
                              attack_whitebox_steps=attack_whitebox_steps, seed=seed, device=device,
                              raw=list(raw_store), anon=list(store), run=run_dir, sweep=list(sweep))
        report = run(config, out, show_progress=progress)
        wrote = f"wrote {Path(out) / REPORT_FILE} and {Path(out) / RESULTS_FILE}"
        if as_json:
            sys.stdout.write(as_json_text(json_safe(report)))
            err_console.print(wrote)
            return
        print_table1(report)
        console.print(wrote)
