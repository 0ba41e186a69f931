"""Provider settings per channel type (API.md Channels): checked by the gateway when a
channel is written, read by the delivery workers."""
