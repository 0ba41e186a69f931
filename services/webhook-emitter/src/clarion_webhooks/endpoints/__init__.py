"""Webhook endpoints: their configuration learnt from Kafka, and its storage."""
