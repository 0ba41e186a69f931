"""``make bench``: Clarion's throughput and latency on the embedded stack."""
