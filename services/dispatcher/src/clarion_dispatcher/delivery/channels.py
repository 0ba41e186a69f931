"""What a delivery worker knows of channels: their configuration, read from the
compacted ``clarion.config.channels`` topic (never from the gateway's database), and a
provider client per configuration, with its rate limit and circuit.

``ChannelConfigs`` reads every partition of the topic from its beginning and keeps the
newest record per key (an empty value deletes the channel); ``start`` returns once it
has read up to where the topic ended when it started, so the first job already sees
every channel that existed then. ``Channels`` builds a channel's client on first use
and builds it again when the configuration changes (the old one closes once its sends
in flight are done).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.kafka import topic_partitions
from clarion_shared.lifecycle import cancel_and_wait
from clarion_shared.logging import get_logger
from clarion_shared.tail import pump

from .domain import rate_limit
from .limits import Circuit, TokenBucket
from .providers import custom_http, email, push, sms, whatsapp
from .providers.base import ConfigError, Provider

log = get_logger(__name__)

Builder = Callable[[ChannelConfig], Provider]


class ChannelConfigs:
    """The channels' configurations, by ``app_id:channel_id``, kept current."""

    def __init__(self, bootstrap_servers: str, topic: str, fetch_max_wait_ms: int = 500) -> None:
        self.topic = topic
        self._bootstrap_servers = bootstrap_servers
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._configs: dict[str, ChannelConfig] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = False

    def get(self, app_id: str, channel_id: str) -> ChannelConfig | None:
        return self._configs.get(f"{app_id}:{channel_id}")

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic: a configuration, or a tombstone."""
        if key is None:
            return
        if not value:
            self._configs.pop(key.decode(errors="replace"), None)
            return
        try:
            config = ChannelConfig.model_validate_json(value)
        except ValidationError as exc:
            log.warning("channels.unreadable_config", key=key, error=str(exc)[:200])
            return
        self._configs[config.key] = config

    async def start(self, timeout_s: float = 60.0) -> None:
        partitions = await topic_partitions(self._bootstrap_servers, self.topic, timeout_s)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await consumer.start()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        self._consumer = consumer
        await asyncio.wait_for(self._catch_up(consumer, ends), timeout_s)
        self._task = asyncio.create_task(self._run(consumer), name=f"configs:{self.topic}")
        self.ready = True
        log.info("channels.loaded", channels=len(self._configs))

    async def _catch_up(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        behind = {tp for tp, end in ends.items() if end > 0}
        while behind:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    self.apply(record.key, record.value)
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        await pump(consumer, self.topic, lambda record: self.apply(record.key, record.value))

    async def stop(self) -> None:
        self.ready = False
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def is_ready(self) -> bool:
        return self.ready


def builders(*, allow_private: bool, ssl_context: ssl.SSLContext | None) -> dict[str, Builder]:
    """How each channel type's client is made."""
    return {
        "email": lambda config: email.build(config, ssl_context=ssl_context),
        "push": lambda config: push.build(
            config, allow_private=allow_private, ssl_context=ssl_context
        ),
        "sms": lambda config: sms.build(config, allow_private=allow_private),
        "whatsapp": lambda config: whatsapp.build(config, allow_private=allow_private),
        "custom": lambda config: custom_http.build(config, allow_private=allow_private),
    }


def trust(ca_file: str | None) -> ssl.SSLContext | None:
    """The system's trust store plus ``ca_file`` (a private relay's or a test server's
    CA), or None for the clients' defaults."""
    if not ca_file:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context


@dataclass
class Channel:
    """One configuration's client, limits and version (its ``updated_at``)."""

    config: ChannelConfig
    provider: Provider | None
    problem: str | None
    bucket: TokenBucket | None
    circuit: Circuit = field(default_factory=Circuit)


class Channels:
    """The clients of the channels in use, made on first use, remade on change."""

    def __init__(
        self,
        configs: ChannelConfigs,
        builders: dict[str, Builder],
        *,
        default_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        circuit: Callable[[], Circuit] = Circuit,
    ) -> None:
        self.configs = configs
        self._builders = builders
        self._default_rate = default_rate
        self._clock = clock
        self._circuit = circuit
        self._channels: dict[str, Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def channel(self, config: ChannelConfig) -> Channel:
        held = self._channels.get(config.key)
        if held is not None and held.config.updated_at == config.updated_at:
            return held
        made = self._make(config, held)
        self._channels[config.key] = made
        if held is not None and held.provider is not None:
            self._close_later(held.provider)
        return made

    def _make(self, config: ChannelConfig, held: Channel | None) -> Channel:
        provider: Provider | None = None
        problem: str | None = None
        build = self._builders.get(config.channel_type)
        if build is None:
            problem = f"no worker delivers {config.channel_type} channels"
        else:
            try:
                provider = build(config)
            except ConfigError as exc:
                problem = str(exc)
        rate = rate_limit(config, self._default_rate)
        bucket = TokenBucket(rate, self._clock()) if rate else None
        circuit = held.circuit if held is not None else self._circuit()
        return Channel(config, provider, problem, bucket, circuit)

    def _close_later(self, provider: Provider) -> None:
        task = asyncio.create_task(provider.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def in_use(self) -> Iterable[Channel]:
        return self._channels.values()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(
            *(c.provider.close() for c in channels if c.provider is not None),
            *self._closing,
            return_exceptions=True,
        )
