"""One module per protocol: ``<Name>Config``, ``run(store, config) -> dict``, ``register(app)``."""
