"""The pipelines' tests train small models in this process: on one intra-op thread, as tests/evaluate does."""

import pytest


@pytest.fixture(autouse=True)
def small_models_on_one_thread(single_thread):
    """The test machines are shared: one intra-op thread keeps small-matrix training fast and steady."""
