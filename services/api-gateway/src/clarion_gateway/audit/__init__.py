"""The audit log: what operators did in the dashboard, per app, append-only."""
