"""Each head's presets own its training recipe, one rule picks a preset for a store's size, and the anonymizer's
TAD and AD tasks train the heads `evaluate tad` and `evaluate ad` train (their configs' head_setup)."""

from __future__ import annotations

import torch

import anonymize.utility_ad  # noqa: F401  (registers "ad")
import anonymize.utility_tad  # noqa: F401  (registers "tad")
from anonymize.utility_tasks import build_task
from evaluate.heads import SMALL_DATA_VIDEOS, choose_preset
from evaluate.heads.mgfn_config import TRAIN_PRESETS as MGFN_TRAIN_PRESETS
from evaluate.heads.mgfn_config import MGFNTrainConfig
from evaluate.heads.tridet_config import TRAIN_PRESETS as TRIDET_TRAIN_PRESETS
from evaluate.heads.tridet_config import TriDetTrainConfig
from evaluate.protocols.ad import ADConfig
from evaluate.protocols.tad import TADConfig
from featstore.store import Store
from tests.conftest import write_tad_array_store
from tests.evaluate.test_ad_without_clips import write_ad_store


def test_auto_picks_the_small_preset_below_the_small_data_size():
    assert SMALL_DATA_VIDEOS == 100
    assert choose_preset("auto", 99, "thumos14") == "small"
    assert choose_preset("auto", 100, "thumos14") == "thumos14"
    assert choose_preset("thumos14", 3, "thumos14") == "thumos14"
    assert choose_preset("small", 500, "ucf-crime") == "small"


def test_the_head_protocols_read_their_recipe_from_the_head_presets():
    assert ADConfig().head_setup(8, 10)[2] == MGFNTrainConfig(**MGFN_TRAIN_PRESETS["small"])
    assert ADConfig().head_setup(8, 100)[2] == MGFNTrainConfig(**MGFN_TRAIN_PRESETS["ucf-crime"])
    assert ADConfig(steps=5, lr=0.01).head_setup(8, 100)[2] == MGFNTrainConfig(steps=5, lr=0.01)
    preset, model, recipe = TADConfig().head_setup(8, 3, [40] * 10)
    assert (preset, model.max_seq_len) == ("small", 64)  # the longest training sequence, rounded up to the divisor
    assert recipe == TriDetTrainConfig(**TRIDET_TRAIN_PRESETS["small"])
    assert TADConfig(epochs=2, seed=4).head_setup(8, 3, [40] * 100)[2] == TriDetTrainConfig(epochs=2, seed=4)


def test_the_anonymizer_tad_task_trains_the_head_evaluate_tad_trains(tmp_path):
    videos = [("train", 20 + 5 * i, [[2.0, 6.0, i % 3]]) for i in range(4)] + [("test", 30, [[1.0, 4.0, 1]])]
    store = Store.open(write_tad_array_store(tmp_path / "tad.zarr", videos, ["a", "b", "c"]))
    task = build_task("tad", store, 1.0)
    preset, model, recipe = TADConfig().head_setup(store.dim, 3, [20, 25, 30, 35])
    assert (task.preset, task.config, task.recipe, task.batch_size) == (preset, model, recipe, recipe.batch_size)


def test_the_anonymizer_ad_task_trains_the_head_evaluate_ad_trains(tmp_path):
    store = Store.open(write_ad_store(tmp_path / "ad.zarr"))
    task = build_task("ad", store, 1.0)
    _, model, recipe = ADConfig().head_setup(store.dim, 6)
    assert task.head.config == model
    assert (task.head_lr, task.head_weight_decay, task.per_class) == (recipe.lr, recipe.weight_decay, 3)
    assert isinstance(task.head, torch.nn.Module)
