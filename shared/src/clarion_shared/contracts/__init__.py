"""Kafka message contracts: one module per topic (see ``clarion_shared.topics``)."""
