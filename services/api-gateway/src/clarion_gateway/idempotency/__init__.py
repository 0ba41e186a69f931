"""``Idempotency-Key``: a request answered once, its response replayed (an edge concern)."""
