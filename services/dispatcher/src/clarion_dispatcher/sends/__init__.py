"""The sends listing: every realtime notification, batch and campaign send of an app,
newest first, and each one's receivers (a view over notifications and batches)."""
