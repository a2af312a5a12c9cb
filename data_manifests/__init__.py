"""Dataset manifests: one versioned JSONL schema, validation, builders for public datasets, the synthetic
dataset generator (``synth``) and the error type every stage raises (``errors``)."""

from data_manifests.schema import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    Manifest,
    ManifestError,
    ManifestHeader,
    Segment,
    VideoRecord,
)

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "Manifest",
    "ManifestError",
    "ManifestHeader",
    "Segment",
    "VideoRecord",
]
