"""Webhook endpoints: their configuration learnt from Kafka, the triggers, storage."""
