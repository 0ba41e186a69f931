"""The delivery worker's use case (``delivery/service.py``) over in-memory ports: what
each provider answer becomes, exactly once across redeliveries, retries and their
policy, rate limits, circuits, two-phase commits and unusable channels."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from clarion_devtools.smtpserver import Mailpit
from clarion_dispatcher.delivery import domain
from clarion_dispatcher.delivery.channels import ChannelConfigs, Channels
from clarion_dispatcher.delivery.domain import RetryPolicy
from clarion_dispatcher.delivery.limits import Circuit
from clarion_dispatcher.delivery.providers import email
from clarion_dispatcher.delivery.providers.base import (
    ERR_CHANNEL_CONFIG,
    ERR_NO_CONTACT_POINT,
    Commit,
    Failed,
    Outbound,
    Outcome,
    Provider,
    Retry,
    Sent,
    Superseded,
)
from clarion_dispatcher.delivery.service import Said, Tuning, Worker
from clarion_dispatcher.testing.deliveries import InMemoryDeliveries
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.status import DeliveryFailed, DeliverySent

APP = "app1"
COUNT = 200


@dataclass
class ScriptedProvider:
    """Answers from ``script`` in turn (then the last one again), recording calls."""

    script: list[Outcome] = field(default_factory=lambda: [Sent("p-1")])
    calls: list[Outbound] = field(default_factory=list)
    closed: bool = False

    async def send(self, outbound: Outbound) -> Outcome:
        self.calls.append(outbound)
        return self.script[min(len(self.calls), len(self.script)) - 1]

    async def close(self) -> None:
        self.closed = True


@dataclass
class TwoPhase(ScriptedProvider):
    """A two-phase provider: the commit is awaited before the answer counts."""

    committed: list[str] = field(default_factory=list)

    async def send_committed(self, outbound: Outbound, commit: Commit) -> Outcome | Superseded:
        if not await commit():
            return Superseded()
        self.committed.append(outbound.idempotency_key)
        return await self.send(outbound)


@dataclass
class RecordingPublisher:
    published: list[Said] = field(default_factory=list)

    async def publish(self, said: Said, *, now_ms: int) -> None:
        self.published.append(said)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(
    channel_type: str = "email", *, enabled: bool = True, **metadata: object
) -> ChannelConfig:
    return ChannelConfig(
        app_id=APP,
        channel_id=f"{channel_type}-1",
        name=channel_type,
        channel_type=channel_type,
        enabled=enabled,
        metadata=dict(metadata),
        updated_at=1,
    )


def job(uid: str, channel_type: str = "email", *, attempt: int = 1, **extra: object) -> DeliveryJob:
    return DeliveryJob(
        job_id=f"job-{uid}-{channel_type}",
        app_id=APP,
        send_id="bat_1",
        uid=uid,
        channel_type=channel_type,
        channel_id=f"{channel_type}-1",
        content={"subject": "Hi", "text": "Hello"},
        contact={"email": f"{uid}@example.com"},
        attempt=attempt,
        mode="batch",
        template_id="tpl",
        created_at=1,
        **extra,
    )


@dataclass
class Rig:
    worker: Worker
    log: InMemoryDeliveries
    configs: ChannelConfigs
    publisher: RecordingPublisher
    clock: Clock

    def add(self, channel: ChannelConfig) -> None:
        self.configs.apply(channel.key.encode(), channel.to_bytes())


def rig(
    provider: Provider | None = None,
    *,
    policy: RetryPolicy | None = None,
    circuit: Circuit | None = None,
    defer_after_s: float = 1.0,
    channel: ChannelConfig | None = None,
    builder: object = None,
) -> Rig:
    configs = ChannelConfigs("unused:9092", "clarion.config.channels")
    clock = Clock()
    made = provider or ScriptedProvider()
    build = builder or (lambda _config: made)
    channels = Channels(
        configs,
        {t: build for t in ("email", "push", "sms", "custom", "whatsapp")},  # type: ignore[misc]
        clock=clock,
        circuit=(lambda: circuit) if circuit is not None else Circuit,
    )
    log = InMemoryDeliveries()
    publisher = RecordingPublisher()
    worker = Worker(
        log,
        channels,
        publisher,
        Tuning(policy=policy or RetryPolicy(), defer_after_s=defer_after_s, clock=clock),
    )
    made_rig = Rig(worker, log, configs, publisher, clock)
    made_rig.add(channel or config())
    return made_rig


async def test_a_sent_job_is_recorded_and_said_once_with_its_mode() -> None:
    provider = ScriptedProvider([Sent("smtp-42")])
    r = rig(provider)
    said = await r.worker.deliver([job("u1")])
    [event] = said.events
    assert isinstance(event, DeliverySent)
    assert (event.mode, event.uid, event.channel_type, event.provider_id) == (
        "batch",
        "u1",
        "email",
        "smtp-42",
    )
    assert event.notification_id == "job-u1-email"
    assert event.template_id == "tpl"
    assert event.chunk == 0  # the job's: the tracker reads that chunk alone
    assert r.log.outcomes["job-u1-email"].status == "sent"
    assert len(provider.calls) == 1


async def test_a_redelivered_job_is_said_again_but_never_sent_again() -> None:
    provider = ScriptedProvider([Sent("smtp-42")])
    r = rig(provider)
    first = await r.worker.deliver([job("u1"), job("u2")])
    again = await r.worker.deliver([job("u1"), job("u2"), job("u1")])
    assert len(provider.calls) == 2
    assert sorted(e.event_id for e in again.events) == sorted(e.event_id for e in first.events)


async def test_a_permanent_failure_is_final_with_the_providers_code() -> None:
    r = rig(ScriptedProvider([Failed("SMTP_550", "no such mailbox")]))
    said = await r.worker.deliver([job("u1")])
    [event] = said.events
    assert isinstance(event, DeliveryFailed)
    assert (event.error.code, event.channel_id, event.notification_id) == (
        "SMTP_550",
        "email-1",
        "job-u1-email",
    )
    assert said.later == []
    assert said.dead == []


async def test_a_transient_failure_goes_to_a_retry_with_backoff_and_retry_after() -> None:
    r = rig(ScriptedProvider([Retry("ERR_PROVIDER_UNAVAILABLE", "429", retry_after_s=40)]))
    before = domain.now_ms()
    said = await r.worker.deliver([job("u1")])
    assert said.events == []
    assert r.log.outcomes == {}
    [later] = said.later
    assert later.attempt == 2
    assert later.job_id == "job-u1-email"
    assert later.not_before is not None
    assert before + 40_000 <= later.not_before <= domain.now_ms() + 41_000


def test_the_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=2, cap_s=10)
    assert policy.delay(1, None, lambda: 0.0) == 1.0
    assert policy.delay(1, None, lambda: 1.0) == 2.0
    assert policy.delay(3, None, lambda: 1.0) == 8.0
    assert policy.delay(6, None, lambda: 1.0) == 10.0  # capped
    assert policy.delay(1, 30, lambda: 0.5) == 30
    assert domain.tier_for(0.5, (1, 10, 60)) == 1
    assert domain.tier_for(12, (1, 10, 60)) == 10
    assert domain.tier_for(600, (1, 10, 60)) == 60


async def test_the_last_attempt_fails_for_good_and_is_dead_lettered() -> None:
    r = rig(ScriptedProvider([Retry("ERR_PROVIDER_UNAVAILABLE", "503")]), policy=RetryPolicy(3))
    said = await r.worker.deliver([job("u1", attempt=3)])
    [event] = said.events
    assert isinstance(event, DeliveryFailed)
    assert event.error.code == "ERR_PROVIDER_UNAVAILABLE"
    assert "3 attempts" in event.error.message
    assert said.later == []
    [(dead, reason)] = said.dead
    assert dead.job_id == "job-u1-email"
    assert "503" in reason


async def test_an_unknown_or_disabled_channel_fails_with_err_channel_config() -> None:
    r = rig()
    r.add(config("sms", enabled=False))
    orphan = job("u1").model_copy(update={"channel_id": "gone"})
    said = await r.worker.deliver([orphan, job("u2", "sms")])
    codes = {e.uid: e.error.code for e in said.events if isinstance(e, DeliveryFailed)}
    assert codes == {"u1": ERR_CHANNEL_CONFIG, "u2": ERR_CHANNEL_CONFIG}


async def test_a_user_without_an_email_address_fails_with_err_no_contact_point() -> None:
    channel = config().model_copy(
        update={
            "metadata": {
                "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none"},
                "from": {"email": "news@example.com"},
            }
        }
    )
    r = rig(channel=channel, builder=email.build)
    nobody = job("u1").model_copy(update={"contact": {}})
    said = await r.worker.deliver([nobody])
    [event] = said.events
    assert isinstance(event, DeliveryFailed)
    assert event.error.code == ERR_NO_CONTACT_POINT
    await r.worker.channels.stop()


async def test_a_rate_limit_defers_what_would_wait_too_long() -> None:
    provider = ScriptedProvider()
    r = rig(provider, channel=config(rateLimitPerSecond=2), defer_after_s=1.0)
    said = await r.worker.deliver([job(f"u{i}") for i in range(6)])
    # A burst of 2, then one every 0.5 s: up to 1 s of waiting is taken, the rest deferred.
    assert len(provider.calls) == 4
    assert len(said.later) == 2
    assert all(j.attempt == 1 for j in said.later)
    soon = domain.now_ms() + 3_000  # due when their tokens come, within seconds
    assert all(j.not_before is not None and j.not_before <= soon for j in said.later)


async def test_a_circuit_opens_after_failures_in_a_row_and_defers_the_rest() -> None:
    provider = ScriptedProvider([Retry("ERR_PROVIDER_UNAVAILABLE", "503")])
    r = rig(provider, circuit=Circuit(threshold=3, cooldown_s=60))
    for i in range(3):
        await r.worker.deliver([job(f"u{i}")])
    said = await r.worker.deliver([job("late")])
    assert len(provider.calls) == 3
    [deferred] = said.later
    assert deferred.attempt == 1
    assert deferred.not_before is not None
    r.clock.now += 61  # half-open: one probe goes
    provider.script = [Sent("ok")]
    probe = await r.worker.deliver([job("probe")])
    assert [type(e) for e in probe.events] == [DeliverySent]


async def test_a_two_phase_provider_claims_before_it_commits() -> None:
    provider = TwoPhase([Sent("q-1")])
    r = rig(provider)
    await r.worker.deliver([job("u1")])
    assert ("job-u1-email", 1) in r.log.claims
    assert provider.committed == ["job-u1-email"]


async def test_a_claim_of_the_same_attempt_is_sent_again_and_said_resent() -> None:
    provider = TwoPhase([Sent("q-1")])
    r = rig(provider)
    claim = domain.outcome(job("u1"), at=5)
    await r.log.claim([claim])  # a worker died after its claim: the server may have it
    said = await r.worker.deliver([job("u1")])
    assert len(provider.calls) == 1  # nothing is lost ...
    assert provider.committed == []  # ... sent as it is, without a new claim
    [event] = said.events
    assert isinstance(event, DeliverySent)
    stored = r.log.outcomes["job-u1-email"]
    assert stored.status == "sent"
    assert stored.resent


async def test_a_claim_of_an_earlier_attempt_does_not_stop_a_retry() -> None:
    provider = TwoPhase([Sent("q-2")])
    r = rig(provider)
    await r.log.claim([domain.outcome(job("u1"), at=5)])  # attempt 1 was answered "retry"
    said = await r.worker.deliver([job("u1", attempt=2)])
    assert len(provider.calls) == 1
    assert [type(e) for e in said.events] == [DeliverySent]


async def test_a_superseded_send_says_nothing() -> None:
    provider = TwoPhase([Sent("q-1")])
    r = rig(provider)

    class Held(InMemoryDeliveries):
        async def claim(self, outcomes: Sequence[object]) -> set[str]:
            return {o.job_id for o in outcomes}  # type: ignore[attr-defined]

    r.worker.deliveries = Held()
    said = await r.worker.deliver([job("u1")])
    assert said.events == []
    assert said.later == []
    assert provider.calls == []


async def test_invalid_push_tokens_are_announced_for_removal() -> None:
    provider = ScriptedProvider([Sent("fcm-1", invalid_tokens=("t-old", "t-old", "t-gone"))])
    r = rig(provider)
    r.add(config("push"))
    said = await r.worker.deliver([job("u1", "push")])
    [removal] = said.tokens
    assert (removal.app_id, removal.uid, removal.tokens) == (APP, "u1", ["t-old", "t-gone"])


async def test_outcomes_are_written_together_not_one_by_one() -> None:
    class Slow(ScriptedProvider):
        async def send(self, outbound: Outbound) -> Outcome:
            await asyncio.sleep(0.001)
            return await super().send(outbound)

    r = rig(Slow())
    await r.worker.deliver([job(f"u{i}") for i in range(200)])
    assert len(r.log.outcomes) == 200
    assert r.log.writes < 20


async def test_a_changed_configuration_gets_a_new_client_and_closes_the_old() -> None:
    made: list[ScriptedProvider] = []

    def build(_config: ChannelConfig) -> ScriptedProvider:
        made.append(ScriptedProvider())
        return made[-1]

    r = rig(builder=build)
    await r.worker.deliver([job("u1")])
    r.add(config().model_copy(update={"updated_at": 2}))
    await r.worker.deliver([job("u2")])
    await asyncio.sleep(0)
    assert len(made) == 2
    assert made[0].closed
    assert not made[1].closed


@pytest.mark.parametrize("status", ["sent", "failed"])
async def test_a_stored_outcome_is_republished_as_it_was(status: str) -> None:
    r = rig()
    error = None if status == "sent" else ErrorInfo(code="SMTP_550", message="no")
    await r.log.record([domain.outcome(job("u1"), at=7, error=error)])
    said = await r.worker.deliver([job("u1")])
    [event] = said.events
    assert event.occurred_at == 7
    assert isinstance(event, DeliverySent if status == "sent" else DeliveryFailed)


def test_calls_failing_while_the_circuit_is_open_do_not_lengthen_it() -> None:
    circuit = Circuit(threshold=2, cooldown_s=10)
    assert not circuit.failed(0.0)
    assert circuit.failed(0.0)  # opened until 10
    for _ in range(50):  # in flight when it opened
        assert not circuit.failed(1.0)
    assert circuit.open_until == 10.0
    assert not circuit.admits(5.0)
    assert circuit.admits(10.0)  # the probe
    assert not circuit.admits(10.0)  # one at a time
    assert circuit.failed(10.5)  # the probe failed: open for twice as long
    assert circuit.open_until == 30.5
    assert circuit.admits(31.0)
    circuit.succeeded()
    assert circuit.admits(31.0)
    assert circuit.admits(31.0)


@pytest.mark.integration
async def test_a_refusing_smtp_server_is_retried_until_it_recovers(
    mailpit_factory: Callable[..., Mailpit],
) -> None:
    """The worker against a real SMTP server that refuses every recipient (451) for a
    while: retries and the circuit's deferrals go round (as the retry topics carry
    them) until it accepts again, and every email arrives once."""
    mailpit = mailpit_factory()
    channel = config().model_copy(
        update={
            "metadata": {
                "smtp": {"host": mailpit.host, "port": mailpit.smtp_port, "security": "none"},
                "from": {"email": "news@example.com"},
            }
        }
    )
    r = rig(
        channel=channel,
        builder=email.build,
        policy=RetryPolicy(max_attempts=12, base_s=0.5, cap_s=4),
        circuit=Circuit(threshold=50, cooldown_s=1),
    )
    r.worker.tuning = Tuning(policy=r.worker.tuning.policy, defer_after_s=1.0)
    pending = [job(f"u{i}") for i in range(COUNT)]
    sent: list[str] = []
    rounds = 0
    async with mailpit.refusing():
        said = await r.worker.deliver(pending)
        pending = said.later
        await asyncio.sleep(3)
    assert len(pending) == COUNT  # every one refused: to try again
    while pending and rounds < 60:
        rounds += 1
        due = max(j.not_before or 0 for j in pending)
        await asyncio.sleep(max(0.0, (due - domain.now_ms()) / 1000))
        said = await r.worker.deliver(pending)
        sent += [e.uid for e in said.events if isinstance(e, DeliverySent)]
        pending = said.later
    assert pending == []
    assert sorted(sent) == sorted(f"u{i}" for i in range(COUNT))
    await mailpit.wait_for_count(COUNT)
    recipients = Counter(a for m in await mailpit.messages() for a in m.recipients)
    assert set(recipients.values()) == {1}
    await r.worker.channels.stop()
