"""Users of an app: their HTTP routes, lookups and events, rules, use cases, storage."""
