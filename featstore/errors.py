"""The one error type a user sees: every subclass is printed as one line and exits with code 2."""


class FeatstoreError(Exception):
    """A problem with the user's input or environment, explained in one line."""
