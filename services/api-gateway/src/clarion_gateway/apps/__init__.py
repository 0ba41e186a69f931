"""Apps (tenants), their API keys and the authentication of requests."""
