"""Campaigns: a template sent to an audience (user ids, a user picker's filter, or a CSV),
now or at a scheduled time, tracked per recipient."""
