"""Stores derived from the session's tiny store: random noise (no information) and planted signals."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.store import Store, write_transformed_store


@pytest.fixture(autouse=True)
def small_models_on_one_thread(single_thread):
    """The test machines are shared: one intra-op thread keeps small-matrix training fast and steady."""


@pytest.fixture(scope="session")
def noise_store(tiny_store, tmp_path_factory):
    """tiny_store with every embedding replaced by standard normal noise: attackers must be at chance."""
    out = tmp_path_factory.mktemp("noise") / "noise.zarr"
    rng = np.random.default_rng(0)
    write_transformed_store(Store.open(tiny_store), out, lambda x: rng.standard_normal(x.shape).astype(np.float32),
                            {"transform": "standard normal noise"})
    return out


class PlantedSignal:
    """A streaming transform adding ``clip_signal[video]`` to clip rows and ``static_signal[video]`` to static
    rows (``write_transformed_store`` streams every clip row first, then every static row, in order)."""

    def __init__(self, source: Store, clip_signal: np.ndarray, static_signal: np.ndarray):
        self.owner = {kind: np.repeat(np.arange(len(off) - 1), np.diff(off))
                      for kind, off in (("clips", source.clip_offsets()), ("static", source.static_offsets()))}
        self.signal = {"clips": clip_signal, "static": static_signal}
        self.n_clips = len(self.owner["clips"])
        self.position = 0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        kind, start = ("clips", self.position) if self.position < self.n_clips else ("static", self.position - self.n_clips)
        self.position += len(block)
        return block.astype(np.float32) + self.signal[kind][self.owner[kind][start : start + len(block)]]


def planted_copy(source_path, out):
    """A copy of a store with planted signals: clip rows get +4 on the dimension of their video's label;
    clip and static rows get +-1.5 on dimensions 20..23 by their video's four attributes. A correct
    protocol must find both."""
    source = Store.open(source_path)
    table = source.videos()
    action = np.zeros((len(table), source.dim), dtype=np.float32)
    action[np.arange(len(table)), table.label] = 4.0
    attributes = np.zeros((len(table), source.dim), dtype=np.float32)
    attributes[:, 20:24] = 1.5 * (2.0 * table.attributes - 1.0)
    write_transformed_store(source, out, PlantedSignal(source, action + attributes, attributes),
                            {"transform": "planted signals"})
    return out


@pytest.fixture(scope="session")
def planted_store(tiny_store, tmp_path_factory):
    return planted_copy(tiny_store, tmp_path_factory.mktemp("planted") / "planted.zarr")


@pytest.fixture(scope="session")
def subject_store(tiny_store, tmp_path_factory):
    """tiny_store with a strong per-subject direction added to every clip: gait retrieval must find it."""
    source = Store.open(tiny_store)
    table = source.videos()
    subjects = sorted(set(table.subject.tolist()))
    directions = np.random.default_rng(5).standard_normal((len(subjects), source.dim)).astype(np.float32) * 3
    per_video = directions[[subjects.index(s) for s in table.subject.tolist()]]
    out = tmp_path_factory.mktemp("subject") / "subject.zarr"
    write_transformed_store(source, out, PlantedSignal(source, per_video, np.zeros_like(per_video)), {})
    return out


@pytest.fixture(scope="session")
def images_store(synth_root, tmp_path_factory):
    """The tiny synthetic-images part (task static: one static clip per image, no clips)."""
    from featstore.extract import ExtractConfig, extract

    out = tmp_path_factory.mktemp("images") / "images.zarr"
    extract(ExtractConfig(model="tiny-vit", dataset=str(synth_root / "manifests" / "synthetic-images.jsonl"),
                          out=str(out), videos_per_part=4), show_progress=False)
    return out
