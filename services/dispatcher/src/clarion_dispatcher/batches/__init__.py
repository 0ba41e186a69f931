"""Batches: registration, each receiver's outcome, the one decision that a batch is final."""
