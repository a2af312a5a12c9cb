"""Protocols on an export without private labels: labels joined from the raw store by video id give the same
numbers as an export that kept them; without --labels-from, one line."""

import numpy as np
import pytest

from evaluate.data import video_table
from evaluate.protocols import privacy, vp
from data_manifests.errors import FeatstoreError
from featstore.store import Store, write_transformed_store
from tests.conftest import run_cli

FAST = dict(epochs=8, batch_size=32)


def exported_copy(source_path, out, keep_private_labels: bool):
    """What `anonymize export` writes, with a fixed transform in place of an anonymizer."""
    source = Store.open(source_path)
    anonymizer = {"run": "test", "private_labels": "kept" if keep_private_labels else "dropped"}
    write_transformed_store(source, out, lambda rows: rows.astype(np.float32) * 0.5 + 0.25,
                            {"provenance": dict(source.provenance, anonymizer=anonymizer)},
                            drop_private_labels=not keep_private_labels)
    return out


@pytest.fixture(scope="module")
def exports(tiny_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    return (exported_copy(tiny_store, folder / "dropped.zarr", keep_private_labels=False),
            exported_copy(tiny_store, folder / "kept.zarr", keep_private_labels=True))


def without_timing(metrics):
    """The metrics without wall times (the run's timing block, each attacker's seconds)."""
    if not isinstance(metrics, dict):
        return metrics
    return {key: without_timing(value) for key, value in metrics.items() if key not in ("timing", "seconds")}


@pytest.mark.parametrize("protocol, config", [(privacy, privacy.PrivacyConfig(attacker="standard", **FAST)),
                                              (vp, vp.VPConfig(attacker="standard", **FAST))])
def test_labels_joined_from_the_raw_store_give_the_numbers_of_a_kept_export(tiny_store, exports, protocol, config):
    dropped, kept = exports
    joined = protocol.run(Store.open(dropped), type(config)(**{**vars(config), "labels_from": str(tiny_store)}))
    assert without_timing(joined) == without_timing(protocol.run(Store.open(kept), config))


def test_the_joined_table_is_the_raw_one(tiny_store, exports):
    dropped, _ = exports
    raw, joined = Store.open(tiny_store).videos(), video_table(Store.open(dropped), str(tiny_store))
    for column in ("video_id", "attributes", "subject", "path", "label", "split"):
        np.testing.assert_array_equal(getattr(joined, column), getattr(raw, column))


def test_an_export_without_private_labels_needs_labels_from_in_one_line(tiny_store, exports):
    dropped, _ = exports
    for command in ("privacy", "vp"):
        done = run_cli("evaluate", command, "--store", str(dropped), "--epochs", "1", "--device", "cpu")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [f"error: {dropped} was exported without private labels: "
                                                    "pass --labels-from RAW_STORE"]
    with pytest.raises(FeatstoreError, match="exported without private labels too"):
        video_table(Store.open(dropped), str(dropped))
    assert video_table(Store.open(dropped)).subject.tolist() == [""] * Store.open(dropped).n_videos  # ar etc. need none


def test_labels_from_another_dataset_is_refused_in_one_line(exports, images_store, tmp_path):
    dropped, _ = exports
    done = run_cli("evaluate", "privacy", "--store", str(dropped), "--labels-from", str(images_store),
                   "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--labels-from {images_store} does not hold the video ids of {dropped}" in lines[0]
