"""Templates and their versions."""
