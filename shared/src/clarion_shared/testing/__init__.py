"""Test support shared by every service's tests: infrastructure, ids, waiting."""
