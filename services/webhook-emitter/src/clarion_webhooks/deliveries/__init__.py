"""Webhook deliveries: what is owed to which endpoint, attempts, retries."""
