"""Batches (and campaigns' sends): registration, each receiver's outcome, the one decision
that a batch is final."""
