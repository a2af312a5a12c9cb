"""A run folder summarized for people (``anonymize info``): config, losses, trainable parameters."""

from __future__ import annotations

import math
from pathlib import Path

from anonymize import checkpoint as ckpt
from anonymize.config import TrainConfig
from data_manifests.errors import FeatstoreError


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def run_summary(run: Path) -> dict:
    run = Path(run)
    if not run.is_dir():
        raise FeatstoreError(f"no run folder at {run}")
    config = TrainConfig.load(run / ckpt.CONFIG_FILE)
    info = ckpt.read_checkpoint_info(run)
    history = info.get("history", [])
    init = history[0] if history and history[0].get("epoch") == 0 else {}
    overview = {
        "store": config.store,
        "tasks": ", ".join(f"{t.name} (w {t.weight}) on {t.store}" for t in config.tasks),
        "aam": f"{config.aam.architecture}, {config.aam.layers} layers, {config.aam.heads} heads, "
               f"block {config.aam.block}, ffn x{config.aam.ffn_ratio}, mode {config.aam.mode}",
        "objective": f"{config.w_utility} * utility({config.utility_target}) - {config.w_budget} * "
                     f"budget({config.budget_mode}, {config.budget_inputs}, clips {config.budget_clips}, "
                     f"T={config.temperature}) + {config.w_lc} * LC({config.lc_distance}, "
                     f"{config.lc_inputs})" + (f" + {config.w_within_video} * within-video consistency"
                                                 if config.w_within_video else ""),
        "optimization": f"AdamW lr {config.scaled_lr:.3g}" + (
            f" (= {config.lr:g} x {config.batch_size}/{config.lr_reference_batch}, linear scaling)"
            if config.lr_scaling == "linear" else "") + (
            f", {config.lr_schedule} schedule" if config.lr_schedule != "constant" else "")
            + f", batch {config.batch_size}, wd {config.weight_decay}, seed {config.seed}",
        "epochs": f"{info['epoch']} of {config.epochs}",
        "identity init": init.get("identity_init", "-"),
        "head init": init.get("head_init", "-"),
        "aam sha256": info.get("aam_sha256"),
    }
    fitted = info.get("output_projection")  # the floor's, rank's and centre's fit, once the last epoch is done
    if config.aam.output_floor > 0:
        floor = f"{config.aam.output_floor:g} x the mean output variance"
        if not fitted:
            overview["output floor"] = f"{floor}: not fitted yet (fitted after the last epoch)"
        elif config.aam.output_rank > 0:  # what is kept is counted after the cap, on the rank's line
            overview["output floor"] = f"{floor}, then the rank cap ({fitted['rows']} train clips)"
        else:
            overview["output floor"] = (f"{floor}: kept {fitted['kept']} of {fitted['dim']} directions "
                                        f"({fitted['rows']} train clips)")
    if config.aam.output_rank > 0:
        cap = f"at most {config.aam.output_rank} directions"
        overview["output rank"] = (f"{cap}: kept {fitted['kept']} of {fitted['dim']}" if fitted
                                   else f"{cap}: not fitted yet (fitted after the last epoch)")
    if config.aam.output_centre:
        overview["output centre"] = (f"the mean output over {fitted['rows']} train clips subtracted" if fitted
                                     else "the mean output over the train clips: not fitted yet (after the last epoch)")
    epochs = []
    for record in history:
        if record.get("epoch") == 0:
            continue
        val = ", ".join(f"{k} {v:.3f}" for k, v in record.get("val", {}).items())
        epochs.append([str(record["epoch"]), _number(record["loss"]), _number(record["utility"]),
                       _number(record["privacy"]), _number(record["lc"], 5), _number(record.get("adversary")),
                       f"{record['clips_per_s']:.0f}", val or "-"])
    return {"run": str(run), "overview": overview, "parameters": info.get("parameters", {}), "epochs": epochs,
            "config": config.to_json(), "history": history}
