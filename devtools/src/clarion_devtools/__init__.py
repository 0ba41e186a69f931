"""Dev-only tooling: ``make run``'s stack runner, the embedded infrastructure driver and
the pytest fixtures that start processes. No service depends on it at run time."""
