"""Emails per second (issue 11): 10,000 emails to a local SMTP server, by Clarion and by a
bare aiosmtplib sender with as many connections (the floor), in the same run.

Each side gets a Mailpit of its own, started fresh (``clarion_devtools.smtpserver``:
``make smtp-install`` builds it), so its counts are exact:

- ``emails-10000``: an app of its own with 10,000 users whose ``metadata["@private"]``
  holds their address, an enabled ``email`` channel on that Mailpit (plain SMTP,
  ``poolSize`` connections), a template with only an email channel, and one batch send
  to the 10,000 (after a warm-up send to ``WARM`` other users). ``seconds``: from the
  first email Mailpit received to the last (its messages' ``Created``, this machine's
  clock); ``send_to_last_s``: from the send's request to the last; ``all_dispatched_s``
  and ``completed_s``: to the batch's last ``ChunkDispatched`` (every job queued) and
  to its ``BatchCompleted`` (the events' timestamps); ``longest_gap_s`` and
  ``stalled_s``: the longest time without an arrival, and the sum of those over
  ``STALL_S`` (the worker between two fetches, mostly);
- ``emails-10000-floor``: 10,000 messages composed beforehand with the standard
  library's ``EmailMessage`` (the same subject, text and HTML, about the same size),
  sent over the same number of connections, each taking the next message when its
  last is answered (``MAIL``, ``RCPT``, ``DATA``: aiosmtplib's ``sendmail``). The
  composing is not timed (``compose_ms_per_message``): the floor is the SMTP part alone.

Both check that every recipient got exactly one email. ``vs_floor`` is Clarion's rate
over the floor's (the aim: at least 0.8). ``cpu_s``: the CPU seconds each process used
from the send (the first connection) until the last email arrived, read from
``/proc`` (``bench.procstat``): the stack's processes, this Mailpit, this process, and
the embedded Kafka, FerretDB and PostgreSQL (shared with whatever else uses them).

``BENCH_EMAIL_CONNECTIONS`` changes the connection count of both sides (default: the
channel's default ``poolSize``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiosmtplib import SMTP

from clarion_devtools.smtpserver import Mailpit
from clarion_shared.channel_settings.email import EmailSettings
from clarion_shared.contracts.status import BatchCompleted, ChunkDispatched, status_event_adapter
from clarion_shared.ids import new_id
from clarion_shared.settings import InfraSettings

from .procstat import cpu_seconds, cpu_used
from .scenarios import ADMIN_TOKEN, BENCH_STATUS, Row, n

DEFAULT_POOL: int = EmailSettings.model_fields["pool_size"].default
CONNECTIONS = int(os.environ.get("BENCH_EMAIL_CONNECTIONS", str(DEFAULT_POOL)))
SENDER = "news@clarion.test"
SENDER_NAME = "Clarion"
DOMAIN = "clarion.test"
WARM = 20
DEADLINE_S = 600
MILESTONE_WAIT_S = 120
_MILESTONES = (b'"chunk_dispatched"', b'"batch_completed"')
POLL_S = 0.1
PAGE = 1000
STALL_S = 0.1  # a longer time without an email is a stall (e.g. between two fetches)
IMPORT = 1000
# The template's content; the floor formats the same strings with each uid.
SUBJECT = "Your order shipped, {name}"
TEXT = (
    "Hi {name},\n\nyour order #{n} has shipped and is on its way. It should arrive within "
    "three working days; the carrier's tracking link follows by email.\n\nThe Clarion team"
)
HTML = (
    "<p>Hi {name},</p><p>your order <b>#{n}</b> has shipped and is on its way. It should "
    "arrive within three working days; the carrier's tracking link follows by "
    "email.</p><p>The Clarion team</p>"
)


def _template(text: str) -> str:
    """``{name}`` → ``{{name}}``: the bench's strings as template content."""
    return text.replace("{", "{{").replace("}", "}}")


def address(uid: str) -> str:
    return f"{uid}@{DOMAIN}"


@contextlib.contextmanager
def fresh_mailpit() -> Iterator[Mailpit]:
    with tempfile.TemporaryDirectory(prefix="bench-mailpit-") as data, Mailpit(Path(data)) as mp:
        yield mp


@dataclass(frozen=True)
class Received:
    """What one Mailpit holds for a set of recipients."""

    first_at: float  # the earliest ``Created`` (epoch seconds)
    last_at: float
    mean_size: float
    messages: int  # for those recipients, copies included
    longest_gap_s: float  # the longest time between two arrivals
    stalled_s: float  # the sum of the gaps longer than ``STALL_S``

    @property
    def spread(self) -> float:
        return self.last_at - self.first_at


async def received(server: Mailpit, wanted: set[str]) -> Received:
    """Every message of ``wanted``'s recipients; each must have exactly one."""
    seen: Counter[str] = Counter()
    created: list[float] = []
    sizes = 0
    async with httpx.AsyncClient(base_url=f"{server.api_url}/api/v1", timeout=60) as api:
        start = 0
        while True:
            answer = await api.get("/messages", params={"start": start, "limit": PAGE})
            page: list[dict[str, Any]] = answer.raise_for_status().json()["messages"] or []
            for message in page:
                to = {a["Address"] for a in message.get("To") or []} & wanted
                if to:
                    seen.update(to)
                    created.append(datetime.fromisoformat(message["Created"]).timestamp())
                    sizes += int(message["Size"])
            if len(page) < PAGE:
                break
            start += len(page)
    doubled = sum(1 for count in seen.values() if count > 1)
    missing = len(wanted) - len(seen)
    if doubled or missing:
        raise AssertionError(f"emails: {missing} recipients got none, {doubled} more than one")
    created.sort()
    gaps = [later - earlier for earlier, later in pairwise(created)]
    return Received(
        created[0],
        created[-1],
        sizes / len(created),
        len(created),
        max(gaps, default=0.0),
        sum(gap for gap in gaps if gap > STALL_S),
    )


async def wait_for(server: Mailpit, count: int) -> int:
    """Poll Mailpit's count until it holds ``count`` (on one connection: a client per
    poll would cost this process more CPU than the polls); how many it holds then."""
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(base_url=f"{server.api_url}/api/v1", timeout=60) as api:
        while True:
            answer = await api.get("/messages", params={"limit": 1})
            held = int(answer.raise_for_status().json()["total"])
            if held >= count:
                return held
            if time.monotonic() > deadline:
                raise RuntimeError(f"emails: {held} of {count} arrived in {DEADLINE_S} s")
            await asyncio.sleep(POLL_S)


def compose(uid: str, i: int) -> bytes:
    """The floor's message: the standard library's, as a bare sender would build it."""
    message = EmailMessage()
    message["From"] = f"{SENDER_NAME} <{SENDER}>"
    message["To"] = address(uid)
    message["Subject"] = SUBJECT.format(name=uid)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=DOMAIN)
    message.set_content(TEXT.format(name=uid, n=i))
    message.add_alternative(HTML.format(name=uid, n=i), subtype="html")
    return message.as_bytes()


async def floor_send(server: Mailpit, messages: list[tuple[str, bytes]], connections: int) -> None:
    """Every message, over ``connections`` connections; each sends the next message
    not taken yet once its last is answered."""
    queue = iter(messages)

    async def connection() -> None:
        smtp = SMTP(hostname=server.host, port=server.smtp_port, timeout=60)
        await smtp.connect()
        for to, message in queue:
            await smtp.sendmail(SENDER, [to], message)
        await smtp.quit()

    await asyncio.gather(*(connection() for _ in range(connections)))


@contextlib.asynccontextmanager
async def status_reader(settings: InfraSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A reader of the stack's ``clarion.status`` from now on (``BatchCompleted`` is
    published in a transaction: read committed)."""
    consumer = AIOKafkaConsumer(
        BENCH_STATUS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench-{new_id()}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        for tp in consumer.assignment():
            await consumer.position(tp)
        yield consumer
    finally:
        await consumer.stop()


async def milestones(consumer: AIOKafkaConsumer, batch_id: str) -> tuple[float, float | None]:
    """When the batch's last chunk was dispatched (its jobs all queued) and when it was
    completed (``BatchCompleted``, None if not within ``MILESTONE_WAIT_S``): the events'
    timestamps, epoch seconds. Read after the measure, so as not to compete with it;
    only those two kinds of events are parsed."""
    chunks: set[int] = set()
    dispatched = 0.0
    deadline = time.monotonic() + MILESTONE_WAIT_S
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
            for record in records:
                if not any(kind in record.value for kind in _MILESTONES):
                    continue
                event = status_event_adapter.validate_json(record.value)
                if event.send_id != batch_id:
                    continue
                if isinstance(event, ChunkDispatched):
                    chunks.add(event.chunk)
                    if len(chunks) == event.chunks:
                        dispatched = record.timestamp / 1000
                elif isinstance(event, BatchCompleted):
                    return dispatched, record.timestamp / 1000
    return dispatched, None


class EmailBench:
    """Both rows; ``processes``: the stack's processes by name (their pids)."""

    def __init__(
        self, http: httpx.AsyncClient, settings: InfraSettings, processes: Mapping[str, int]
    ) -> None:
        self._http = http
        self._settings = settings
        self._processes = processes
        self._count = n(10_000)
        self._uids = [f"mail-{i:05d}" for i in range(self._count)]
        self._warm = [f"warm-{i:02d}" for i in range(WARM)]

    async def run(self) -> list[Row]:
        clarion = await self.clarion()
        floor = await self.floor()
        ratio = clarion.notifications_per_s / floor.notifications_per_s
        clarion.extra["vs_floor"] = round(ratio, 2)
        print(
            f"emails: Clarion {clarion.notifications_per_s:.0f}/s, floor "
            f"{floor.notifications_per_s:.0f}/s over {CONNECTIONS} connections: {ratio:.2f}x",
            flush=True,
        )
        return [clarion, floor]

    async def _app(self, server: Mailpit) -> dict[str, str]:
        """An app with the users, an email channel on ``server`` and the template."""
        created = await self._http.post(
            "/admin/apps",
            json={"name": "bench-emails"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        app = created.raise_for_status().json()["data"]
        auth = {"apikey": app["apiKey"], "appid": app["appId"]}
        metadata = {
            "smtp": {"host": server.host, "port": server.smtp_port, "security": "none"},
            "from": {"email": SENDER, "name": SENDER_NAME},
            "poolSize": CONNECTIONS,
        }
        channel = {"name": "Email", "channelId": "email", "type": "email", "enabled": True}
        await self._post("/v3/campaigns/channels", auth, {**channel, "metadata": metadata})
        people = self._warm + self._uids
        for start in range(0, len(people), IMPORT):
            users = [
                {"uid": uid, "name": uid, "metadata": {"@private": {"email": address(uid)}}}
                for uid in people[start : start + IMPORT]
            ]
            await self._post("/v3/users/import", auth, {"users": users})
        content = {"subject": _template(SUBJECT), "text": _template(TEXT), "html": _template(HTML)}
        template = {
            "name": "Bench email",
            "templateId": "bench-email",
            "channels": [{"channelType": "email", "channelId": "email", "content": content}],
            "variableSchema": [
                {"key": "name", "type": "string", "required": True},
                {"key": "n", "type": "string", "defaultValue": "0"},
            ],
        }
        await self._post("/v3/campaigns/templates", auth, template)
        approved = await self._http.put(
            "/v3/campaigns/templates/bench-email", json={"status": "approved"}, headers=auth
        )
        approved.raise_for_status()
        return auth

    async def _post(self, path: str, auth: dict[str, str], body: dict[str, Any]) -> Any:
        answer = await self._http.post(path, json=body, headers=auth)
        return answer.raise_for_status().json()["data"]

    async def _send(self, auth: dict[str, str], uids: list[str]) -> dict[str, Any]:
        body = {
            "templateId": "bench-email",
            "receivers": uids,
            "variables": {uid: {"name": uid, "n": str(i)} for i, uid in enumerate(uids)},
        }
        sent: dict[str, Any] = await self._post("/v3/campaigns/notifications/messages", auth, body)
        return sent

    async def clarion(self) -> Row:  # long: the run, its checks and its row
        with fresh_mailpit() as server:
            auth = await self._app(server)
            # Warm-up: the channel known to the worker, its connections open.
            await self._send(auth, self._warm)
            await wait_for(server, WARM)
            await asyncio.sleep(1)
            async with status_reader(self._settings) as status:
                before = cpu_seconds(self._processes)
                started = time.time()
                sent = await self._send(auth, self._uids)
                accepted_ms = (time.time() - started) * 1000
                await wait_for(server, WARM + self._count)
                cpu = cpu_used(before, cpu_seconds(self._processes))
                dispatched_at, completed_at = await milestones(status, sent["batchId"])
            await asyncio.sleep(1)  # a late copy would show now
            got = await received(server, {address(uid) for uid in self._uids})
            held = await server.count()
        if held != WARM + self._count:
            raise AssertionError(f"emails: Mailpit holds {held}, not {WARM + self._count}")
        return Row(
            f"emails-{self._count}",
            1,
            self._count,
            got.spread,
            extra={
                "batch_id": sent["batchId"],
                "accepted_ms": round(accepted_ms, 1),
                "all_dispatched_s": round(dispatched_at - started, 2),
                "completed_s": None if completed_at is None else round(completed_at - started, 2),
                "first_email_s": round(got.first_at - started, 2),
                "send_to_last_s": round(got.last_at - started, 2),
                "connections": CONNECTIONS,
                "mean_size_bytes": round(got.mean_size),
                "longest_gap_s": round(got.longest_gap_s, 3),
                "stalled_s": round(got.stalled_s, 2),
                "warm_up": WARM,
                "cpu_s": cpu,
            },
        )

    async def floor(self) -> Row:
        started = time.perf_counter()
        messages = [(address(uid), compose(uid, i)) for i, uid in enumerate(self._uids)]
        compose_ms = (time.perf_counter() - started) * 1000 / len(messages)
        with fresh_mailpit() as server:
            before = cpu_seconds(self._processes)
            started = time.time()
            await floor_send(server, messages, CONNECTIONS)
            await wait_for(server, self._count)
            cpu = cpu_used(before, cpu_seconds(self._processes))
            got = await received(server, {to for to, _ in messages})
        return Row(
            f"emails-{self._count}-floor",
            self._count,
            self._count,
            got.spread,
            extra={
                "send_to_last_s": round(got.last_at - started, 2),
                "connections": CONNECTIONS,
                "mean_size_bytes": round(got.mean_size),
                "longest_gap_s": round(got.longest_gap_s, 3),
                "compose_ms_per_message": round(compose_ms, 3),
                "cpu_s": cpu,
            },
        )
