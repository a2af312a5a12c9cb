"""The protocols' command-line options come from their configs: one default and one help per setting."""

import dataclasses
import importlib

import pytest

from evaluate.cli import protocol_command

CONFIGS = {"ar": "ARConfig", "privacy": "PrivacyConfig", "vp": "VPConfig", "retrieval": "RetrievalConfig",
           "gait": "GaitConfig", "bias": "BiasConfig", "tad": "TADConfig", "ad": "ADConfig"}
COMMAND_LINE_ONLY = {"store", "out", "progress", "as_json"}  # options that are not settings of the protocol


@pytest.mark.parametrize("protocol", list(CONFIGS))
def test_every_option_is_a_config_setting_with_its_default_and_help(protocol):
    config = getattr(importlib.import_module(f"evaluate.protocols.{protocol}"), CONFIGS[protocol])
    fields = {field.name: field for field in dataclasses.fields(config)}
    options = {param.name: param for param in protocol_command(protocol).params if param.param_type_name == "option"}
    assert "store" in options and "device" in options  # the options were read
    settings = set(options) - COMMAND_LINE_ONLY
    assert settings <= set(fields), f"options that are no {config.__name__} field: {sorted(settings - set(fields))}"
    for name in settings:
        field, option = fields[name], options[name]
        assert option.help == field.metadata.get("help"), name
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        # a command line may ask for what its config can leave empty (bias --genders); it has no default then
        assert option.required == field.metadata["required"], name
        if not option.required:
            assert option.default == default, name
