"""Mongo repositories (the only place a collection is named), the Kafka publisher,
the HTTP client of the other services, and in-memory fakes for unit tests."""
