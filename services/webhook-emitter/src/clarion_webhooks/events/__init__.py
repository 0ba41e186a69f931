"""What status events say to webhook subscribers."""
