"""Direct sends: ``POST /v3/campaigns/notifications/messages``."""
