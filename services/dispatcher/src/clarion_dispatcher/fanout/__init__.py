"""The fan-out of ``clarion.sends``: a send chunk becomes records, feed items, jobs, events."""
