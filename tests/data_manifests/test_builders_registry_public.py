"""The public-dataset builders are registered under the names users type, with one-line descriptions."""

from __future__ import annotations

import pytest

from data_manifests.registry import list_datasets, resolve_dataset
from data_manifests.schema import ManifestError

PUBLIC = ("vispr", "vp-hmdb51", "vp-ucf101", "pa-hmdb51", "ntu60", "toyota-smarthome", "casia-b", "kinetics400",
          "thumos14", "ucf-crime")


def test_public_datasets_are_registered_with_one_line_descriptions():
    entries = {e.name: e for e in list_datasets()}
    for name in ("synthetic", "ucf101", "hmdb51"):  # the earlier registrations are kept
        assert name in entries
    for name in PUBLIC:
        entry = entries[name]
        assert entry.description and "\n" not in entry.description and len(entry.description) < 120
        assert entry.default_root is None  # real datasets always need --data-root


@pytest.mark.parametrize("name", PUBLIC)
def test_public_datasets_need_a_data_root_and_report_missing_files_in_one_line(tmp_path, name):
    with pytest.raises(ManifestError, match=f"dataset '{name}' needs --data-root"):
        resolve_dataset(name)
    with pytest.raises(ManifestError) as err:
        resolve_dataset(name, data_root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg
