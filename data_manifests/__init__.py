"""Dataset manifests: one versioned JSONL schema (``schema``), validation, builders for public datasets, the
synthetic dataset generator (``synth``) and the error type every stage raises (``errors``).

Nothing is imported here: every command line imports ``data_manifests.errors``, and its ``--help`` should not pay
for the schema (numpy-free, but a dozen milliseconds)."""
