"""Dataset manifests: one versioned JSONL schema, validation, and builders for public datasets."""

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
