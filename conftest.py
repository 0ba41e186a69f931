"""Root pytest configuration: the shared fixtures (real Kafka, real MongoDB-wire server)."""

pytest_plugins = ["clarion_shared.testing.plugin"]
