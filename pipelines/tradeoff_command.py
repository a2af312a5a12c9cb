"""The ``evaluate tradeoff`` command and its settings, ``TradeoffConfig``: what ``evaluate tradeoff --help`` reads.

The trade-off itself (exports, inner protocols, the plot) is ``pipelines.tradeoff`` (its docstring describes it),
imported when the command runs, so that the help loads no heavy library; ``pipelines.tradeoff`` re-exports these
names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from evaluate.options import DEFAULT_OUT_ROOT, config_option, json_option, progress_option, protocol_option
from evaluate.protocols import ar, privacy, vp
from evaluate.settings import (ATTACKER_CHOICES, ATTACKER_EPOCHS, ATTACKER_GROUPS, DATA_PANEL, OUTPUT_PANEL,
                               PROBE_EPOCHS, check, check_choice, device_setting, seed_setting)

PLOT_FILE = "tradeoff.png"
DEFAULT_OUT = DEFAULT_OUT_ROOT / "tradeoff"
EXPORT_CHOICES = ("auto", "always", "never")
PRIVACY_KINDS = ("clips", "static")


@dataclass
class TradeoffConfig:
    """What makes a point: the inner protocols' settings (official presets by default), the hypervolume's
    reference point, the optional raw store and how ``RUN/anon.zarr`` is obtained."""

    attacker: str = "all"  # all: the worst case over every attacker; or one attacker's cMAP
    privacy_kind: str = "clips"  # clips: full clips (the vp protocol; the headline) | static: static clips
    ar_epochs: int = PROBE_EPOCHS  # the ar protocol's official preset
    privacy_epochs: int = ATTACKER_EPOCHS  # the privacy protocol's official preset
    reference_utility: float = 0.0  # hypervolume reference point: top-1 ...
    reference_privacy: float = 1.0  # ... and cMAP (q = 1 - cMAP = 0): the worst corner
    raw_store: Optional[str] = None  # the un-anonymized store, for the raw point
    export: str = "auto"  # auto | always | never (see the docstring of pipelines.tradeoff)
    seed: int = seed_setting()
    device: str = device_setting()

    def __post_init__(self):
        check_choice("attacker", self.attacker, ATTACKER_CHOICES)
        check_choice("privacy_kind", self.privacy_kind, PRIVACY_KINDS)
        check_choice("export", self.export, EXPORT_CHOICES)
        # the normalizing area (1 - u_ref) * (1 - q_ref) must be positive
        check(math.isfinite(self.reference_utility) and 0 <= self.reference_utility < 1,
              f"reference_utility must be in [0, 1), got {self.reference_utility}")
        check(math.isfinite(self.reference_privacy) and 0 < self.reference_privacy <= 1,
              f"reference_privacy must be in (0, 1], got {self.reference_privacy}")
        self.ar_config()  # the inner protocols validate their own settings
        self.privacy_config()

    def ar_config(self) -> ar.ARConfig:
        return ar.ARConfig(epochs=self.ar_epochs, seed=self.seed, device=self.device)

    def privacy_config(self) -> privacy.PrivacyConfig | vp.VPConfig:
        if self.privacy_kind == "clips":
            return vp.VPConfig(attacker=self.attacker, epochs=self.privacy_epochs, seed=self.seed, device=self.device)
        return privacy.PrivacyConfig(attacker=self.attacker, epochs=self.privacy_epochs, kind="static",
                                     seed=self.seed, device=self.device)

    @property
    def privacy_protocol(self) -> str:
        return "vp" if self.privacy_kind == "clips" else "privacy"

    def privacy_of(self, metrics: dict) -> float:
        """The privacy coordinate from the protocol's metrics: the worst case, or one attacker's cMAP."""
        if self.attacker in ATTACKER_GROUPS:
            return metrics["worst_case"]["cmap"]
        return metrics["attackers"][self.attacker]["cmap_mean" if self.privacy_kind == "clips" else "cmap"]


def register(app: typer.Typer) -> None:
    @app.command("tradeoff")
    def tradeoff_command(
        runs: Optional[list[str]] = typer.Option(
            None, "--run", "--runs", help="Run folder of `anonymize train` or `anonymize baseline` (a path or an "
                                          "fsspec URL); repeat the option. A shell glob works too (`--run "
                                          "runs/sweep-*`): the folders after the first are taken as arguments.",
            rich_help_panel=DATA_PANEL),
        more_runs: Optional[list[str]] = typer.Argument(None, metavar="RUN", show_default=False,
                                                        help="More run folders.", rich_help_panel=DATA_PANEL),
        raw_store: Optional[str] = typer.Option(
            None, "--raw-store", "--raw", help="The raw (un-anonymized) store, a path or an fsspec URL: adds the raw "
                                               "point; not given: no raw point.", rich_help_panel=DATA_PANEL),
        attacker: str = protocol_option(TradeoffConfig.attacker, "Privacy coordinate: all (worst case over every "
                                                                 "attacker but boosting), thorough (all and "
                                                                 "boosting), both (worst of standard and authors) or "
                                                                 "one attacker: " + ", ".join(
                                                                     a for a in ATTACKER_CHOICES
                                                                     if a not in ATTACKER_GROUPS) + "."),
        privacy_kind: str = protocol_option(TradeoffConfig.privacy_kind, "Privacy samples: clips (full clips, the vp "
                                                                         "protocol) or static (static clips, the "
                                                                         "privacy protocol)."),
        ar_epochs: int = protocol_option(TradeoffConfig.ar_epochs, "Epochs of the AR linear probe (the default is "
                                                                   "the official preset)."),
        privacy_epochs: int = protocol_option(TradeoffConfig.privacy_epochs, "Epochs of the privacy attacker (the "
                                                                             "default is the official preset)."),
        reference_utility: float = protocol_option(TradeoffConfig.reference_utility, "Hypervolume reference point: "
                                                                                     "top-1, in [0, 1)."),
        reference_privacy: float = protocol_option(TradeoffConfig.reference_privacy, "Hypervolume reference point: "
                                                                                     "cMAP, in (0, 1]."),
        export: str = protocol_option(TradeoffConfig.export, "RUN/anon.zarr: auto (reuse when current, else "
                                                             "export), always (re-export) or never (reuse only)."),
        seed: int = config_option(TradeoffConfig, "seed"),
        device: str = config_option(TradeoffConfig, "device"),
        out: Optional[Path] = typer.Option(None, "--out", help=f"Folder for tradeoff.json and {PLOT_FILE}; not given: "
                                                               f"{DEFAULT_OUT}/.", rich_help_panel=OUTPUT_PANEL),
        progress: bool = progress_option(),
        as_json: bool = json_option(),
    ) -> None:
        """Privacy-utility trade-off of a sweep of runs: points, Pareto front, normalized hypervolume, PNG."""
        from evaluate.results import finish
        from featstore.store import Store
        from pipelines.tradeoff import print_tradeoff_table, run

        config = TradeoffConfig(attacker=attacker, privacy_kind=privacy_kind, ar_epochs=ar_epochs,
                                privacy_epochs=privacy_epochs, reference_utility=reference_utility,
                                reference_privacy=reference_privacy, raw_store=raw_store, export=export, seed=seed,
                                device=device)
        out_dir = out if out is not None else DEFAULT_OUT
        all_runs = [*(runs or []), *(more_runs or [])]
        metrics = run(all_runs, config, out=out_dir, show_progress=progress)
        stores = {point["run"]: Store.open(point["store"]) for point in metrics["points"]}
        if metrics["raw"] is not None:
            stores["raw"] = Store.open(metrics["raw"]["store"])
        finish("tradeoff", config, metrics, stores, out_dir, printer=lambda: print_tradeoff_table(metrics),
               as_json=as_json)
