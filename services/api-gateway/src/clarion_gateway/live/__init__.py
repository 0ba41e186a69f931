"""Live progress of a campaign's or a batch's send: snapshots pushed as status events
arrive (server-sent events for the API, HTML fragments for the dashboard)."""
