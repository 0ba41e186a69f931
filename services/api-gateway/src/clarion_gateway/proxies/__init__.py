"""Routes the gateway authenticates and passes on to the owning service."""
