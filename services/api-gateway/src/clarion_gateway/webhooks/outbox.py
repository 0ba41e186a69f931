"""The outbox of webhook configurations: what was written reaches the emitter, in order.

A write is stored marked unpublished (``service``). :func:`propagate` publishes a
version, then clears its mark while it is still the one stored. When it is not (another
request or the republisher wrote or published meanwhile, and this publish may have
landed after theirs), the stored version is published again: the last record of a key
on the compacted topic is always what the database holds, whatever order the writers
ran in. A deletion is a tombstone record; its document goes once that is published.

The :class:`Republisher` (every gateway process, at start and every few seconds)
propagates whatever is still marked: a publish that failed during a request, or a
process that died between its write and its publish.
"""

from __future__ import annotations

from clarion_shared.lifecycle import Periodic
from clarion_shared.logging import get_logger

from ..kafka import PublishFailed
from .domain import Tombstone, Version, config_of
from .service import ConfigPublisher, Propagate, WebhookRepository

log = get_logger(__name__)

# Rounds of "publish, then the stored version moved on": each one means yet another
# write landed meanwhile, whose own publish follows it; the republisher has the rest.
ROUNDS = 3


async def propagate(
    webhooks: WebhookRepository, configs: ConfigPublisher, version: Version
) -> bool:
    """Publish ``version`` and clear its mark (see the module). True when the key's
    newest record is known to be on the topic; raises ``PublishFailed``."""
    app_id, webhook_id = version.app_id, version.webhook_id
    current: Version | None = version
    for _ in range(ROUNDS):
        if isinstance(current, Tombstone) or current is None:
            await configs.webhook_deleted(f"{app_id}:{webhook_id}")
        else:
            await configs.webhook_config(config_of(current))
        if current is None or await webhooks.mark_published(current):
            return True
        current = await webhooks.stored(app_id, webhook_id)
    return False


def after_write(webhooks: WebhookRepository, configs: ConfigPublisher) -> Propagate:
    """What a request does after its write: propagate it; a broker that does not take
    it leaves it to the republisher (the write stands, the answer is a success)."""

    async def publish(version: Version) -> None:
        try:
            await propagate(webhooks, configs, version)
        except PublishFailed as exc:
            log.warning(
                "webhook.config_publish_deferred",
                app_id=version.app_id,
                webhook_id=version.webhook_id,
                error=str(exc),
            )

    return publish


class Republisher(Periodic):
    """A resource: propagates the unpublished versions at start, then every
    ``interval_s`` until stopped."""

    def __init__(
        self, webhooks: WebhookRepository, configs: ConfigPublisher, interval_s: float
    ) -> None:
        super().__init__(interval_s, "webhook.republish_failed")
        self._webhooks = webhooks
        self._configs = configs

    async def tick(self) -> int:
        """Propagate what is unpublished now; how many versions were published."""
        published = 0
        for version in await self._webhooks.unpublished():
            await propagate(self._webhooks, self._configs, version)
            published += 1
        if published:
            log.info("webhook.configs_republished", count=published)
        return published
