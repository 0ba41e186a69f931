"""Use cases, one module per resource: async functions, dependencies passed in."""
