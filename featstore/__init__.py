"""featstore: frozen video encoders -> chunked Zarr feature stores with full provenance."""

__version__ = "0.1.0"
