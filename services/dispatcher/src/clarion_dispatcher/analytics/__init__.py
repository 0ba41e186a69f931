"""Analytics: rollups of the status events, per app, campaign, template, channel and
user, by hour and day, counted exactly once (``service.count``) and read without
touching a delivery (``service.report``)."""
