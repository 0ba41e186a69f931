"""Dashboard operators: accounts, per-app roles, sessions and the sign-in rate limit."""
