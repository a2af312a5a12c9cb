"""The built-in synthetic video dataset: motion-defined actions, appearance-defined private attributes.

Four parts are generated under one folder, each with its own manifest (``data_manifests/schema.py``):
``synthetic`` (trimmed clips, task "action"), ``synthetic-tad`` (untrimmed, annotated action segments),
``synthetic-ad`` (untrimmed, half with anomalous intervals) and ``synthetic-images`` (still frames with
attribute labels only). Privacy and utility are separable by construction: a class is how the actor moves,
the private attributes are how it looks. Same config, byte-identical files. ``data_manifests/README.md``
describes the dataset in full.

Modules, in the order the data flows:

- ``style``       how it looks and moves: ``SynthStyle``, the presets ``STYLES`` and their seeds
- ``config``      what to generate: ``SynthConfig``, part and class names, the pixel ``Geometry``
- ``planning``    every file with its split, subject and labels; the seeding of every draw
- ``appearance``  identities (attributes, colours), their sprites, backgrounds
- ``motion``      per-class motion, untrimmed segment plans, anomalies
- ``rendering``   sprites composited into frames
- ``writers``     mp4, PNG and text files written atomically
- ``generate``    ``generate_synthetic``: all of the above, then the manifests
"""

from data_manifests.synth.config import (
    AD_CLASS_NAMES,
    ANOMALY_KINDS,
    ATTRIBUTE_NAMES,
    CLASS_NAMES,
    PARTS,
    SynthConfig,
    manifest_path,
    part_name,
    preset_config,
    saved_config,
    saved_config_differences,
)
from data_manifests.synth.generate import GENERATOR_VERSION, anomaly_kinds, generate_synthetic
from data_manifests.synth.style import STYLE_SEEDS, STYLES, SynthStyle

__all__ = [
    "AD_CLASS_NAMES",
    "ANOMALY_KINDS",
    "ATTRIBUTE_NAMES",
    "CLASS_NAMES",
    "GENERATOR_VERSION",
    "PARTS",
    "STYLES",
    "STYLE_SEEDS",
    "SynthConfig",
    "SynthStyle",
    "anomaly_kinds",
    "generate_synthetic",
    "manifest_path",
    "part_name",
    "preset_config",
    "saved_config",
    "saved_config_differences",
]
