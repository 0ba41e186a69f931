"""Webhook endpoints (``/v3/webhooks``): configured here, delivered by the webhook-emitter."""
