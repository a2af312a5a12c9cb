"""The protocols' shared presets: the linear probe (ar, bias) and the attribute attackers (privacy, vp) are each
defined once, in ``evaluate.settings``; every config field a command line shows carries its own help."""

import dataclasses

import pytest

from data_manifests.errors import FeatstoreError
from evaluate.protocols.ar import ARConfig
from evaluate.protocols.bias import BiasConfig
from evaluate.protocols.privacy import PrivacyConfig
from evaluate.protocols.vp import VPConfig
from evaluate.settings import PROBE_EPOCHS, AttackerSettings, LinearProbeSettings


def shared_defaults(config: type, preset: type) -> dict:
    return {field.name: field.default for field in dataclasses.fields(config)
            if field.name in preset.__dataclass_fields__}


def test_the_probe_protocols_take_the_linear_probe_preset_from_one_place(tmp_path):
    preset = {field.name: field.default for field in dataclasses.fields(LinearProbeSettings)}
    assert issubclass(ARConfig, LinearProbeSettings) and issubclass(BiasConfig, LinearProbeSettings)
    assert shared_defaults(ARConfig, LinearProbeSettings) == shared_defaults(BiasConfig, LinearProbeSettings) == preset
    assert preset["epochs"] == PROBE_EPOCHS == 250
    genders = tmp_path / "genders.csv"
    genders.write_text("subject,gender\ns1,F\n")
    for config in (ARConfig(epochs=3, seed=2), BiasConfig(genders=str(genders), epochs=3, seed=2)):
        assert config.train_settings() == LinearProbeSettings(epochs=3, seed=2).train_settings()
    with pytest.raises(FeatstoreError, match="clip_sampling must be one of"):  # the preset validates itself
        BiasConfig(genders=str(genders), clip_sampling="some")


def test_the_attribute_protocols_take_the_attackers_settings_from_one_place():
    assert issubclass(PrivacyConfig, AttackerSettings) and issubclass(VPConfig, AttackerSettings)
    preset = {field.name: field.default for field in dataclasses.fields(AttackerSettings)}
    assert shared_defaults(PrivacyConfig, AttackerSettings) == shared_defaults(VPConfig, AttackerSettings) == preset
    assert PrivacyConfig(epochs=7, seed=1).train_settings() == VPConfig(epochs=7, seed=1).train_settings()
    for config in (PrivacyConfig, VPConfig):
        with pytest.raises(FeatstoreError, match="val_fraction must be in"):
            config(val_fraction=1.5)
