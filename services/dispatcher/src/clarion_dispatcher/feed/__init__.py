"""The in-app feed: each user's feed items, their read and delivered states."""
