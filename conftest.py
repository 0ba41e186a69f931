"""Root pytest configuration: the shared fixtures (real Kafka, real MongoDB-wire server,
the tests' topic namespace ``test.clarion.*``) from the dev-only tooling."""

pytest_plugins = ["clarion_devtools.pytest_plugin"]
