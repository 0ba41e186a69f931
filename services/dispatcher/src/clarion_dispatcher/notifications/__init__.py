"""Notification records: one per receiver and channel of a send, and their states."""
