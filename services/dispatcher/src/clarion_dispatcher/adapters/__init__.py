"""Mongo repositories (the only place a collection is named) and Kafka clients."""
