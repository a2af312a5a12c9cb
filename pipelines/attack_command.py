"""The ``evaluate attack`` command and its settings, ``AttackConfig``: what ``evaluate attack --help`` reads.

The attacks themselves (torch, numpy) are in ``pipelines.attack`` (its docstring describes them), imported when
the command runs, so that the help loads no heavy library; ``pipelines.attack`` re-exports these names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from evaluate.options import (
    config_option,
    default_out_dir,
    json_option,
    out_option,
    progress_option,
    protocol_option,
    store_option,
)
from evaluate.protocols.privacy import PrivacyConfig
from evaluate.settings import (
    ATTACKER_EPOCHS, DATA_PANEL, PROBE_EPOCHS, LinearProbeSettings, TrainSettings, check, check_choice, check_training,
    device_setting, seed_setting,
)

ATTRIBUTE_KINDS = ("static", "clips")


@dataclass
class AttackConfig:
    # black-box inversion network
    inverter_hidden: Optional[int] = None  # None: twice the embedding dim
    inverter_layers: int = 2  # hidden layers of the MLP path (0: the affine path alone)
    inverter_epochs: int = 100
    inverter_lr: float = 1e-3
    inverter_batch_size: int = 512
    inverter_weight_decay: float = 0.0
    inverter_val_fraction: float = 0.1  # share of the attacker's training videos held out for epoch selection
    # white-box inversion
    whitebox_steps: int = 500
    whitebox_lr: float = 0.1  # Adam step, in units of the observed embeddings' RMS coordinate
    whitebox_batch_rows: int = 16384  # rows (temporal mode: clip slots) optimized together
    # scoring heads, trained on raw features (ar and privacy presets)
    action_epochs: int = PROBE_EPOCHS
    attribute_epochs: int = ATTACKER_EPOCHS
    attribute_kind: str = "static"  # static (privacy protocol) | clips (vp protocol, the paper's Table 8)
    eval_clips: int = 5
    seed: int = seed_setting()
    train_split: str = "train"
    test_split: str = "test"
    device: str = device_setting()

    def __post_init__(self):
        check(self.inverter_hidden is None or self.inverter_hidden >= 1,
              f"inverter_hidden must be >= 1, got {self.inverter_hidden}")
        check(self.inverter_layers >= 0, f"inverter_layers must be >= 0, got {self.inverter_layers}")
        check_training(self.inverter_epochs, self.inverter_lr, self.inverter_batch_size, self.inverter_weight_decay)
        check(0 < self.inverter_val_fraction < 1,
              f"inverter_val_fraction must be in (0, 1), got {self.inverter_val_fraction}")
        check(self.whitebox_steps >= 0, f"whitebox_steps must be >= 0, got {self.whitebox_steps}")
        check(self.whitebox_lr > 0 and math.isfinite(self.whitebox_lr),
              f"whitebox_lr must be a positive number, got {self.whitebox_lr}")
        check(self.whitebox_batch_rows >= 1, f"whitebox_batch_rows must be >= 1, got {self.whitebox_batch_rows}")
        check(self.action_epochs >= 1, f"action_epochs must be >= 1, got {self.action_epochs}")
        check(self.attribute_epochs >= 1, f"attribute_epochs must be >= 1, got {self.attribute_epochs}")
        check_choice("attribute_kind", self.attribute_kind, ATTRIBUTE_KINDS)
        check(self.eval_clips >= 1, f"eval_clips must be >= 1, got {self.eval_clips}")
        check(self.train_split != self.test_split, "train_split and test_split must differ")

    def inverter_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.inverter_epochs, lr=self.inverter_lr, batch_size=self.inverter_batch_size,
                             weight_decay=self.inverter_weight_decay, seed=self.seed)

    def action_settings(self) -> LinearProbeSettings:
        """The ``ar`` preset (AdamW lr 1e-3, batch 1024, one random clip per video per epoch)."""
        return LinearProbeSettings(epochs=self.action_epochs, eval_clips=self.eval_clips, seed=self.seed)

    def attribute_preset(self) -> PrivacyConfig:
        """The ``privacy`` standard attacker's preset (AdamW lr 1e-3, batch 512, plateau 1/5, 10% validation)."""
        return PrivacyConfig(attacker="standard", epochs=self.attribute_epochs, seed=self.seed, device=self.device)


def register(app: typer.Typer) -> None:
    @app.command("attack")
    def attack_command(
        store: str = store_option("--store", "--anon", help="The anonymized store (`anonymize export` output): a "
                                                            "path or an fsspec URL."),
        raw_store: str = store_option("--raw-store", "--raw", help="The raw store --store was exported from: a path "
                                                                   "or an fsspec URL."),
        run_dir: str = typer.Option(..., "--run", help="The run folder of the anonymizer that made --store: a path or "
                                                       "an fsspec URL.", rich_help_panel=DATA_PANEL),
        attribute_kind: str = protocol_option(AttackConfig.attribute_kind, "static (static clips, privacy) or clips "
                                                                           "(5 clips, vp; the paper's Table 8)."),
        inverter_epochs: int = protocol_option(AttackConfig.inverter_epochs, "Black-box inverter training epochs."),
        inverter_hidden: Optional[int] = protocol_option(AttackConfig.inverter_hidden, "Inverter hidden width; not "
                                                                                       "given: 2 x embedding dim."),
        inverter_layers: int = protocol_option(AttackConfig.inverter_layers, "Inverter hidden layers (0: affine "
                                                                             "only)."),
        inverter_lr: float = protocol_option(AttackConfig.inverter_lr, "Inverter AdamW learning rate."),
        inverter_batch_size: int = protocol_option(AttackConfig.inverter_batch_size, "Inverter pairs per step."),
        whitebox_steps: int = protocol_option(AttackConfig.whitebox_steps, "White-box Adam steps per row."),
        whitebox_lr: float = protocol_option(AttackConfig.whitebox_lr, "White-box Adam step, in units of the "
                                                                       "embeddings' RMS coordinate."),
        whitebox_batch_rows: int = protocol_option(AttackConfig.whitebox_batch_rows, "White-box rows optimized "
                                                                                     "together (memory)."),
        action_epochs: int = protocol_option(AttackConfig.action_epochs, "Action head (linear, raw features) "
                                                                         "epochs."),
        attribute_epochs: int = protocol_option(AttackConfig.attribute_epochs, "Attribute head (MLP, raw features) "
                                                                               "epochs."),
        seed: int = config_option(AttackConfig, "seed"),
        device: str = config_option(AttackConfig, "device"),
        out: Optional[Path] = out_option(),
        progress: bool = progress_option(),
        as_json: bool = json_option(),
    ) -> None:
        """Inversion attacks (Table 8): black-box inverter and white-box preimage; action top-1 and attribute cMAP."""
        from evaluate.data import open_store
        from evaluate.results import finish
        from pipelines.attack import print_attack_table, run

        config = AttackConfig(attribute_kind=attribute_kind, inverter_epochs=inverter_epochs,
                              inverter_hidden=inverter_hidden, inverter_layers=inverter_layers, inverter_lr=inverter_lr,
                              inverter_batch_size=inverter_batch_size, whitebox_steps=whitebox_steps,
                              whitebox_lr=whitebox_lr, whitebox_batch_rows=whitebox_batch_rows, action_epochs=action_epochs,
                              attribute_epochs=attribute_epochs, seed=seed, device=device)
        raw_opened, anon_opened = open_store(raw_store), open_store(store)
        metrics = run(raw_opened, anon_opened, run_dir, config, show_progress=progress)
        finish("attack", config, metrics, {"anon": anon_opened, "raw": raw_opened},
               out if out is not None else default_out_dir(anon_opened.path), as_json=as_json,
               printer=lambda: print_attack_table(f"attack: {anon_opened.path} (anonymizer {run_dir})", metrics))
