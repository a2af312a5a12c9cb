"""The one error type a user sees: every subclass is printed as one line and exits with code 2.

It lives in the bottom package so every stage (manifests, extraction, evaluation, anonymization,
pipelines) raises the same type without importing a stage above it.
"""


class FeatstoreError(Exception):
    """A problem with the user's input or environment, explained in one line."""
