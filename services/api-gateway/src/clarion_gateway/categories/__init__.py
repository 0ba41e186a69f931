"""Template categories: per app, CometChat's seven and any a client or a template adds."""
