"""Channels: the provider instances templates send through."""
