"""The email provider client (``delivery/providers/email.py``) and its settings.

Unit tests: settings parsing, address and content checks, the composed message read
back by the standard library's parser, and the classification of every SMTP failure.
Integration tests send through a real SMTP server (Mailpit, ``make smtp-install``),
read back what it received, and drive failures with its chaos triggers and with a TCP
relay (``Relay``) that sits in front of it: the relay counts connections, can stop
relaying the server's answers (a server that stops answering) and can hang up on its
open connections (a server that closed them while they were idle).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPDataError,
    SMTPException,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPResponse,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from clarion_devtools.helpers import random_ref
from clarion_devtools.mailpit_api import Chaos, Message, Trigger
from clarion_devtools.s3server import free_port
from clarion_devtools.smtpserver import Mailpit
from clarion_dispatcher.delivery.providers.base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_CONTACT_POINT,
    ERR_INVALID_CONTENT,
    ERR_NO_CONTACT_POINT,
    ERR_PROVIDER_UNAVAILABLE,
    ConfigError,
    Failed,
    Outbound,
    Retry,
    Sent,
    Superseded,
)
from clarion_dispatcher.delivery.providers.email import (
    build,
    classify,
    provider_id,
    recipient,
)
from clarion_dispatcher.delivery.providers.email_message import (
    EmailContent,
    Letterhead,
    header_value,
    message_id,
)
from clarion_shared.channel_settings.email import EmailSettings, email_address
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.config_channels import ChannelConfig

Factory = Callable[..., Mailpit]
CONTENT: JsonObject = {
    "subject": "Your order shipped ✓",
    "text": "Hi Alice,\nyour order shipped.\n",
    "html": "<p>Hi <b>Alice</b> &amp; Bob, your order shipped.</p>",
}


def metadata(
    host: str = "127.0.0.1", port: int = 2525, *, name: str = "Clarion", **extra: Any
) -> JsonObject:
    smtp = {"host": host, "port": port, "security": extra.pop("security", "none")}
    smtp.update(extra.pop("smtp", {}))
    data: JsonObject = {"smtp": smtp, "from": {"email": "noreply@clarion.test", "name": name}}
    data.update(extra)
    return data


def channel(meta: JsonObject, channel_type: str = "email") -> ChannelConfig:
    return ChannelConfig(
        app_id="app-1",
        channel_id="mail",
        name="Mail",
        channel_type=channel_type,
        enabled=True,
        metadata=meta,
        updated_at=0,
    )


def outbound(to: str | None, content: JsonObject | None = None, key: str = "") -> Outbound:
    return Outbound(
        idempotency_key=key or random_ref("job").replace("-", ""),
        app_id="app-1",
        send_id="send-1",
        uid="alice",
        channel_id="mail",
        content=CONTENT if content is None else content,
        contact={} if to is None else {"email": to},
    )


def parsed(settings: EmailSettings, content: JsonObject, to: str = "a@b.test") -> EmailMessage:
    """A composed message as the standard library's parser reads it."""
    letterhead = Letterhead(settings)
    parsed_content = EmailContent.parse(content)
    assert isinstance(parsed_content, EmailContent)
    raw = letterhead.compose(to, letterhead.message_id("k1"), parsed_content)
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


# ------------------------------------------------------------------------ settings


def test_settings_read_api_md_names_and_fill_the_defaults() -> None:
    settings = EmailSettings.model_validate(
        metadata(
            "smtp.relay.test",
            587,
            security="starttls",
            smtp={"username": "clarion", "password": "s3cret"},
            replyTo="Help@Clarion.test",
            listUnsubscribe="<https://clarion.test/u>",
            rateLimitPerSecond=100,
            unknownKey="ignored",
        )
    )
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == (
        "smtp.relay.test",
        587,
        "starttls",
    )
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.sender.email == "noreply@clarion.test"
    assert settings.reply_to == "Help@clarion.test"
    assert settings.list_unsubscribe == ("https://clarion.test/u",)
    assert settings.one_click_unsubscribe
    assert settings.rate_limit_per_second == 100
    assert (settings.pool_size, settings.timeout_seconds, settings.connect_timeout_seconds) == (
        8,
        30.0,
        10.0,
    )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"smtp": {"host": "", "port": 25, "security": "none"}}, "smtp.host"),
        ({"smtp": {"host": "h", "port": 0, "security": "none"}}, "smtp.port"),
        ({"smtp": {"host": "h", "port": 25, "security": "ssl"}}, "smtp.security"),
        ({"from": {"email": "not-an-address"}}, "from.email"),
        ({"from": {"email": "a@b.test", "name": "A\r\nBcc: x@y.test"}}, "from.name"),
        ({"replyTo": "nobody"}, "replyTo"),
        ({"listUnsubscribe": "javascript:alert(1)"}, "listUnsubscribe"),
        ({"listUnsubscribe": ["https://a.test/u", "https://a.test/u v"]}, "listUnsubscribe"),
        ({"poolSize": 0}, "poolSize"),
        ({"timeoutSeconds": -1}, "timeoutSeconds"),
    ],
)
def test_bad_settings_are_a_config_error_that_names_the_key(change: JsonObject, where: str) -> None:
    meta = {**metadata(), **change}
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        build(channel(meta))


def test_a_config_error_never_repeats_the_password() -> None:
    meta = metadata(smtp={"password": "hunter2-secret", "port": "not-a-port"})
    with pytest.raises(ConfigError) as raised:
        build(channel(meta))
    assert "hunter2-secret" not in str(raised.value)


def test_a_channel_of_another_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="not email"):
        build(channel(metadata(), "sms"))


def test_mailto_unsubscribe_has_no_one_click_post() -> None:
    settings = EmailSettings.model_validate(
        metadata(listUnsubscribe=["mailto:unsub@clarion.test?subject=stop"])
    )
    assert not settings.one_click_unsubscribe
    message = parsed(settings, CONTENT)
    assert message["List-Unsubscribe"] == "<mailto:unsub@clarion.test?subject=stop>"
    assert message["List-Unsubscribe-Post"] is None


# ------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith+tag@Example.COM ", "Alice.Smith+tag@example.com"),
        ("bob@bücher.example", "bob@xn--bcher-kva.example"),
        ("o'brien@mail.example.org", "o'brien@mail.example.org"),
        ("alice", None),
        ("alice@localhost", None),
        ("@example.com", None),
        ("alice@", None),
        ("al ice@example.com", None),
        ("alice..x@example.com", None),
        (".alice@example.com", None),
        ("alice@-example.com", None),
        ("alice@exa_mple.com", None),
        ("a@b@example.com", None),
        ("<alice@example.com>", None),
        ("alice@example.com\r\nRCPT TO:<x@y.com>", None),
        ("ålice@example.com", None),
        ("x" * 65 + "@example.com", None),
        ("a@" + "b" * 64 + ".com", None),
    ],
)
def test_email_addresses_are_checked_by_shape(raw: str, expected: str | None) -> None:
    assert email_address(raw) == expected


def test_a_user_without_an_email_has_no_contact_point() -> None:
    contacts: list[JsonObject] = [{}, {"email": ""}, {"email": None}, {"contactNumber": "+49151"}]
    for contact in contacts:
        outcome = recipient(contact)
        assert isinstance(outcome, Failed)
        assert outcome.code == ERR_NO_CONTACT_POINT


def test_a_malformed_email_is_an_invalid_contact_point() -> None:
    contacts: list[JsonObject] = [{"email": "nobody"}, {"email": 42}, {"email": ["a@b.test"]}]
    for contact in contacts:
        outcome = recipient(contact)
        assert isinstance(outcome, Failed)
        assert outcome.code == ERR_INVALID_CONTACT_POINT


async def test_send_fails_without_touching_the_network_for_bad_input() -> None:
    client = build(channel(metadata(port=free_port())))  # nothing listens there
    missing = await client.send(outbound(None))
    invalid = await client.send(outbound("nobody"))
    no_body = await client.send(outbound("a@b.test", {"subject": "Hi"}))
    assert isinstance(missing, Failed)
    assert missing.code == ERR_NO_CONTACT_POINT
    assert isinstance(invalid, Failed)
    assert invalid.code == ERR_INVALID_CONTACT_POINT
    assert isinstance(no_body, Failed)
    assert no_body.code == ERR_INVALID_CONTENT
    assert client.pool.opened == 0
    await client.close()


# --------------------------------------------------------------------- content


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"text": "hi"}, "subject"),
        ({"subject": "Hi"}, "text or an html"),
        ({"subject": "Hi", "text": "", "html": ""}, "text or an html"),
        ({"subject": "Hi", "text": 3}, "text must be a string"),
        ({"subject": "Hi", "html": {"x": 1}}, "html must be a string"),
    ],
)
def test_content_that_is_not_an_email_says_why(content: JsonObject, problem: str) -> None:
    said = EmailContent.parse(content)
    assert isinstance(said, str)
    assert problem in said


def test_a_multipart_message_reads_back_whole() -> None:
    settings = EmailSettings.model_validate(
        metadata(
            name="Clarion, Inc.",
            replyTo="help@clarion.test",
            listUnsubscribe=["mailto:u@clarion.test", "https://clarion.test/u?id=1"],
        )
    )
    message = parsed(settings, CONTENT, to="alice@example.com")
    assert message["Subject"] == "Your order shipped ✓"
    assert message["From"].addresses[0].display_name == "Clarion, Inc."
    assert message["From"].addresses[0].addr_spec == "noreply@clarion.test"
    assert message["To"] == "alice@example.com"
    assert message["Reply-To"] == "help@clarion.test"
    assert message["Message-ID"] == "<k1@clarion.test>"
    assert message["Date"] is not None
    assert message["List-Unsubscribe"] == "<mailto:u@clarion.test>, <https://clarion.test/u?id=1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (_lf(part.get_content()) for part in message.iter_parts())
    assert text == "Hi Alice,\nyour order shipped.\n"
    # Sent as rendering made it: escaped once, not twice.
    assert html == "<p>Hi <b>Alice</b> &amp; Bob, your order shipped.</p>"


@pytest.mark.parametrize("only", ["text", "html"])
def test_a_single_body_is_a_single_part(only: str) -> None:
    settings = EmailSettings.model_validate(metadata())
    message = parsed(settings, {"subject": "Hi", only: CONTENT[only]})
    assert message.get_content_type() == ("text/plain" if only == "text" else "text/html")
    assert _lf(message.get_content()).rstrip("\n") == str(CONTENT[only]).rstrip("\n")
    assert message["From"].addresses[0].display_name == "Clarion"
    assert message["Reply-To"] is None
    assert message["List-Unsubscribe"] is None


def test_long_lines_and_non_ascii_survive_the_round_trip() -> None:
    settings = EmailSettings.model_validate(metadata(name="Zoë Dupré"))
    long_html = "<p>" + "Grüße, " * 400 + "</p>"
    subject = "Bestellung " * 40 + "✓ versandt"
    message = parsed(settings, {"subject": subject, "text": "ö\r\nline two\r", "html": long_html})
    assert message["Subject"] == subject.strip()
    assert message["From"].addresses[0].display_name == "Zoë Dupré"
    text, html = (_lf(part.get_content()) for part in message.iter_parts())
    assert text == "ö\nline two\n"
    assert html.rstrip("\n") == long_html


def test_no_header_can_be_smuggled_in_through_the_subject() -> None:
    settings = EmailSettings.model_validate(metadata())
    message = parsed(settings, {"subject": "Hi\r\nBcc: victim@evil.test\nX-Evil: 1", "text": "x"})
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert message["Subject"] == "Hi Bcc: victim@evil.test X-Evil: 1"


def test_header_values_are_plain_when_they_can_be() -> None:
    assert header_value("Welcome, Alice!") == "Welcome, Alice!"
    assert header_value("looks =?utf-8?b?eA==?= encoded").startswith("=?utf-8?b?")
    folded = header_value("é" * 100)
    assert all(len(line) <= 76 for line in folded.split("\r\n"))


def test_the_message_id_follows_the_job() -> None:
    assert message_id("9f2c4e", "clarion.test") == message_id("9f2c4e", "clarion.test")
    assert message_id("9f2c4e", "clarion.test") == "<9f2c4e@clarion.test>"
    odd = message_id("send:1/uid <x>", "clarion.test")
    assert odd == message_id("send:1/uid <x>", "clarion.test")
    assert odd != message_id("send:1/uid <y>", "clarion.test")
    assert odd.startswith("<")
    assert odd.endswith("@clarion.test>")
    assert " " not in odd
    assert ":" not in odd


# -------------------------------------------------------------- classification


def _cert_error() -> SMTPConnectError:
    error = SMTPConnectError("Error connecting to h on port 465")
    error.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (SMTPRecipientRefused(451, "4.7.1 Try later", "a@b.test"), Retry, "SMTP_451"),
        (SMTPSenderRefused(421, "4.3.2 Shutting down", "n@c.test"), Retry, "SMTP_421"),
        (SMTPDataError(452, "4.3.1 Insufficient storage"), Retry, "SMTP_452"),
        (SMTPRecipientRefused(550, "5.1.1 User unknown", "a@b.test"), Failed, "SMTP_550"),
        (SMTPDataError(552, "5.3.4 Message too big"), Failed, "SMTP_552"),
        (SMTPConnectResponseError(554, "No service"), Failed, "SMTP_554"),
        (SMTPConnectResponseError(421, "Too busy"), Retry, "SMTP_421"),
        (SMTPAuthenticationError(535, "5.7.8 Bad credentials"), Failed, ERR_CHANNEL_CONFIG),
        (SMTPAuthenticationError(454, "4.7.0 Temporary failure"), Retry, "SMTP_454"),
        (
            SMTPSenderRefused(530, "5.7.0 Must issue STARTTLS", "n@c.test"),
            Failed,
            ERR_CHANNEL_CONFIG,
        ),
        (SMTPReadTimeoutError("Timed out waiting"), Retry, ERR_PROVIDER_UNAVAILABLE),
        (SMTPConnectError("Connection refused"), Retry, ERR_PROVIDER_UNAVAILABLE),
        (SMTPServerDisconnected("Connection lost"), Retry, ERR_PROVIDER_UNAVAILABLE),
        (ConnectionResetError("reset by peer"), Retry, ERR_PROVIDER_UNAVAILABLE),
        (SMTPException("SMTP AUTH extension not supported"), Failed, ERR_CHANNEL_CONFIG),
        (_cert_error(), Failed, ERR_CHANNEL_CONFIG),
    ],
)
def test_every_smtp_failure_is_classified(exc: BaseException, kind: type, code: str) -> None:
    outcome = classify(exc)
    assert isinstance(outcome, kind)
    assert outcome.code == code
    assert outcome.message


def test_a_5xx_keeps_the_servers_words() -> None:
    outcome = classify(SMTPRecipientRefused(550, "5.1.1 <a@b.test>: User unknown", "a@b.test"))
    assert isinstance(outcome, Failed)
    assert outcome.message == "550 5.1.1 <a@b.test>: User unknown"


def test_the_provider_id_is_the_queue_id_when_the_server_names_one() -> None:
    queued = SMTPResponse(250, "2.0.0 Ok: queued as 4Xyz7Q1")
    assert provider_id(queued, "<k@c.test>") == "4Xyz7Q1"
    assert provider_id(SMTPResponse(250, "OK"), "<k@c.test>") == "<k@c.test>"


# ----------------------------------------------------------------- integration


class Relay:
    """A TCP relay to an SMTP server: counts connections, can go silent (the
    server's answers are dropped) and can hang up on the connections open now (the
    next thing a client sends there gets the connection closed)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.accepted = 0
        self.open = 0
        self.most_open = 0
        self.silent = False
        self._doomed: set[asyncio.StreamWriter] = set()
        self._live: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._live):
            writer.close()
        await self._server.wait_closed()

    async def close_all(self) -> None:
        for writer in list(self._live):
            writer.close()
        await _until(lambda: self.open == 0)

    def hang_up(self) -> None:
        self._doomed |= self._live

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._live.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(
                self._pipe(reader, up_writer, writer, answers=False),
                self._pipe(up_reader, writer, writer, answers=True),
            )
        finally:
            self.open -= 1
            self._live.discard(writer)
            self._doomed.discard(writer)
            writer.close()

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
        *,
        answers: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                if not answers and client in self._doomed:
                    client.close()
                    break
                if answers and self.silent:
                    continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()
            client.close()


@pytest.fixture
async def relay(mailpit: Mailpit) -> AsyncIterator[Relay]:
    started = await Relay(mailpit.smtp_port).start()
    yield started
    await started.stop()


async def received(server: Mailpit, to: str, count: int = 1) -> list[Message]:
    """The messages ``server`` holds for ``to`` (waits until it holds ``count``)."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        mine = [m for m in await server.messages() if to in m.recipients]
        if len(mine) >= count or asyncio.get_running_loop().time() > deadline:
            return [await server.message(m.id) for m in mine]
        await asyncio.sleep(0.1)


def address() -> str:
    return f"{random_ref('user')}@example.test"


@pytest.mark.integration
@pytest.mark.parametrize("bodies", [("text",), ("html",), ("text", "html")])
async def test_an_email_arrives_as_composed(mailpit: Mailpit, bodies: tuple[str, ...]) -> None:
    meta = metadata(
        mailpit.host,
        mailpit.smtp_port,
        name="Clarion Team",
        replyTo="help@clarion.test",
        listUnsubscribe="https://clarion.test/unsubscribe?u=alice",
    )
    client = build(channel(meta))
    to = address()
    content = {"subject": "Your order ✓", **{body: CONTENT[body] for body in bodies}}
    outcome = await client.send(outbound(to, content, key="job4f2a9c"))
    await client.close()

    assert isinstance(outcome, Sent)
    assert outcome.detail == {"messageId": "<job4f2a9c@clarion.test>"}
    [message] = await received(mailpit, to)
    assert outcome.provider_id == message.id  # Mailpit's queue id is its message id
    assert message.subject == "Your order ✓"
    assert (message.sender.name, message.sender.address) == ("Clarion Team", "noreply@clarion.test")  # type: ignore[union-attr]
    assert [a.address for a in message.to] == [to]
    assert [a.address for a in message.reply_to] == ["help@clarion.test"]
    assert message.message_id == "job4f2a9c@clarion.test"
    assert message.header("List-Unsubscribe") == ["<https://clarion.test/unsubscribe?u=alice>"]
    assert message.header("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert message.return_path == "noreply@clarion.test"
    if "html" in bodies:
        assert message.html.strip() == CONTENT["html"]
    if bodies == ("text",):
        assert message.html == ""
        assert message.text.replace("\r\n", "\n").strip() == "Hi Alice,\nyour order shipped."


@pytest.mark.integration
async def test_a_repeated_job_carries_the_same_message_id(mailpit: Mailpit) -> None:
    client = build(channel(metadata(mailpit.host, mailpit.smtp_port)))
    to = address()
    first = await client.send(outbound(to, key="jobrepeat1"))
    again = await client.send(outbound(to, key="jobrepeat1"))
    await client.close()
    assert isinstance(first, Sent)
    assert isinstance(again, Sent)
    messages = await received(mailpit, to, 2)
    assert [m.message_id for m in messages] == ["jobrepeat1@clarion.test"] * 2
    assert client.pool.opened == 1  # the second send reused the connection


@pytest.mark.integration
async def test_starttls_with_auth(mailpit_factory: Factory) -> None:
    server = mailpit_factory(tls="starttls", credentials=("clarion", "s3cret-pw"))
    meta = metadata(
        server.host,
        server.smtp_port,
        security="starttls",
        smtp={"username": "clarion", "password": "s3cret-pw"},
    )
    client = build(channel(meta), ssl_context=server.ssl_context())
    to = address()
    outcome = await client.send(outbound(to))
    await client.close()
    assert isinstance(outcome, Sent), outcome
    [message] = await received(server, to)
    assert message.username == "clarion"

    wrong_meta = metadata(
        server.host,
        server.smtp_port,
        security="starttls",
        smtp={"username": "clarion", "password": "wrong-pw"},
    )
    wrong = build(channel(wrong_meta), ssl_context=server.ssl_context())
    refused = await wrong.send(outbound(address()))
    await wrong.close()
    assert isinstance(refused, Failed)
    assert refused.code == ERR_CHANNEL_CONFIG
    assert "535" in refused.message
    assert "wrong-pw" not in refused.message

    # Production trusts the system's store only: this server's certificate is not in it.
    untrusted = build(channel(meta))
    failed = await untrusted.send(outbound(address()))
    await untrusted.close()
    assert isinstance(failed, Failed)
    assert failed.code == ERR_CHANNEL_CONFIG
    assert "certificate" in failed.message

    # Plain SMTP where the server asks for STARTTLS first (530): the settings are wrong.
    plain = build(channel(metadata(server.host, server.smtp_port)))
    need_tls = await plain.send(outbound(address()))
    await plain.close()
    assert isinstance(need_tls, Failed)
    assert need_tls.code == ERR_CHANNEL_CONFIG


@pytest.mark.integration
async def test_implicit_tls(mailpit_factory: Factory) -> None:
    server = mailpit_factory(tls="implicit")
    meta = metadata(server.host, server.smtp_port, security="tls")
    client = build(channel(meta), ssl_context=server.ssl_context())
    to = address()
    outcome = await client.send(outbound(to, {"subject": "TLS", "html": "<p>over TLS</p>"}))
    await client.close()
    assert isinstance(outcome, Sent), outcome
    [message] = await received(server, to)
    assert message.html.strip() == "<p>over TLS</p>"


@pytest.mark.integration
async def test_a_451_is_retried_and_the_same_client_recovers(mailpit_factory: Factory) -> None:
    server = mailpit_factory()
    client = build(channel(metadata(server.host, server.smtp_port)))
    to = address()
    async with server.refusing(Chaos(recipient=Trigger(451))):
        refused = await client.send(outbound(to))
    assert isinstance(refused, Retry)
    assert refused.code == "SMTP_451"
    assert await server.count() == 0

    outcome = await client.send(outbound(to))
    await client.close()
    assert isinstance(outcome, Sent)
    assert len(await received(server, to)) == 1
    assert client.pool.opened == 1  # RSET kept the connection usable


@pytest.mark.integration
async def test_a_550_fails_with_the_smtp_code(mailpit_factory: Factory) -> None:
    server = mailpit_factory()
    client = build(channel(metadata(server.host, server.smtp_port)))
    async with server.refusing(Chaos(recipient=Trigger(550))):
        outcome = await client.send(outbound(address()))
    await client.close()
    assert isinstance(outcome, Failed)
    assert outcome.code == "SMTP_550"
    assert "550" in outcome.message


@pytest.mark.integration
async def test_a_refused_connection_is_retried() -> None:
    client = build(channel(metadata(port=free_port(), connectTimeoutSeconds=2)))
    outcome = await client.send(outbound(address()))
    await client.close()
    assert isinstance(outcome, Retry)
    assert outcome.code == ERR_PROVIDER_UNAVAILABLE


@pytest.mark.integration
async def test_concurrent_sends_share_at_most_pool_size_connections(
    mailpit_factory: Factory,
) -> None:
    server = mailpit_factory()
    relay = await Relay(server.smtp_port).start()
    client = build(channel(metadata(server.host, relay.port, poolSize=8)))
    recipients = [address() for _ in range(200)]
    try:
        outcomes = await asyncio.gather(*(client.send(outbound(to)) for to in recipients))
        assert all(isinstance(outcome, Sent) for outcome in outcomes)
        assert relay.accepted <= 8
        assert relay.most_open <= 8
        assert client.pool.opened == relay.accepted
        assert await server.wait_for_count(200) == 200
        got = sorted(to for m in await server.messages() for to in m.recipients)
        assert got == sorted(recipients)  # each exactly once

        await client.close()  # releases every connection
        assert client.pool.idle == 0
        await _until(lambda: relay.open == 0)
        after = await client.send(outbound(address()))
        assert isinstance(after, Retry)
        assert relay.accepted == client.pool.opened  # nothing opened after close
    finally:
        await client.close()
        await relay.stop()


@pytest.mark.integration
async def test_notes_start_with_the_transaction_one_per_connection(
    mailpit_factory: Factory,
) -> None:
    """Two-phase sends: the worker's note (its claim) starts when the message takes a
    connection, before it reaches its ending dot, so at most ``poolSize`` notes are out;
    no message is taken by the server before its note is written."""
    server = mailpit_factory()
    client = build(channel(metadata(server.host, server.smtp_port, poolSize=2)))
    gate = asyncio.Event()
    started: list[str] = []

    def note(to: str) -> Callable[[], Awaitable[bool]]:
        async def commit() -> bool:
            started.append(to)
            await gate.wait()
            return True

        return commit

    recipients = [address() for _ in range(10)]
    try:
        sends = [
            asyncio.create_task(client.send_committed(outbound(to), note(to))) for to in recipients
        ]
        await _until(lambda: len(started) == 2)
        await asyncio.sleep(0.3)  # no more start while the first two wait
        assert started == recipients[:2]
        assert await server.count() == 0  # nothing taken before its note
        gate.set()
        outcomes = await asyncio.gather(*sends)
        assert all(isinstance(outcome, Sent) for outcome in outcomes), outcomes
        assert started == recipients
        assert await server.wait_for_count(10) == 10
    finally:
        await client.close()


@pytest.mark.integration
async def test_a_send_whose_note_was_taken_elsewhere_is_dropped_before_the_dot(
    mailpit_factory: Factory,
) -> None:
    server = mailpit_factory()
    client = build(channel(metadata(server.host, server.smtp_port, poolSize=1)))

    async def taken() -> bool:
        return False

    try:
        dropped = await client.send_committed(outbound(address()), taken)
        to = address()
        after = await client.send(outbound(to))  # a fresh connection: the pool goes on
        assert isinstance(dropped, Superseded)
        assert isinstance(after, Sent)
        assert [m.recipients for m in await server.messages()] == [(to,)]
        assert client.pool.opened == 2  # the abandoned message's connection was closed
    finally:
        await client.close()


@pytest.mark.integration
async def test_a_server_that_stops_answering_is_retried_after_the_timeout(
    mailpit: Mailpit, relay: Relay
) -> None:
    client = build(channel(metadata(mailpit.host, relay.port, timeoutSeconds=0.5)))
    assert isinstance(await client.send(outbound(address())), Sent)

    relay.silent = True
    stalled = await client.send(outbound(address()))
    assert isinstance(stalled, Retry)
    assert stalled.code == ERR_PROVIDER_UNAVAILABLE
    assert "in time" in stalled.message

    relay.silent = False
    to = address()
    recovered = await client.send(outbound(to))
    await client.close()
    assert isinstance(recovered, Sent)
    assert len(await received(mailpit, to)) == 1
    assert client.pool.opened == 2  # the timed-out connection was dropped, not reused


@pytest.mark.integration
async def test_a_server_that_never_greets_is_retried(mailpit: Mailpit, relay: Relay) -> None:
    relay.silent = True
    client = build(channel(metadata(mailpit.host, relay.port, connectTimeoutSeconds=0.5)))
    outcome = await client.send(outbound(address()))
    await client.close()
    assert isinstance(outcome, Retry)
    assert outcome.code == ERR_PROVIDER_UNAVAILABLE


@pytest.mark.integration
async def test_a_connection_closed_while_idle_is_replaced(mailpit: Mailpit, relay: Relay) -> None:
    client = build(channel(metadata(mailpit.host, relay.port)))
    assert isinstance(await client.send(outbound(address())), Sent)

    relay.hang_up()  # the server drops the idle connection when it is next used
    to = address()
    outcome = await client.send(outbound(to))
    assert isinstance(outcome, Sent), outcome
    assert len(await received(mailpit, to)) == 1
    assert client.pool.opened == 2

    await relay.close_all()  # the server closes the idle connection (the client sees it)
    after = await client.send(outbound(address()))
    await client.close()
    assert isinstance(after, Sent)
    assert client.pool.opened == 3


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.integration
async def test_a_connection_idle_too_long_is_reopened(mailpit: Mailpit, relay: Relay) -> None:
    client = build(channel(metadata(mailpit.host, relay.port, maxIdleSeconds=0)))
    for _ in range(3):
        assert isinstance(await client.send(outbound(address())), Sent)
    assert client.pool.opened == 3
    await _until(lambda: relay.open == 1)  # the ones it stopped trusting were closed
    await client.close()
    await _until(lambda: relay.open == 0)


@pytest.mark.integration
async def test_close_lets_sends_in_flight_finish_and_turns_later_ones_away(
    mailpit_factory: Factory,
) -> None:
    server = mailpit_factory()
    relay = await Relay(server.smtp_port).start()
    client = build(channel(metadata(server.host, relay.port, poolSize=2)))
    try:
        sends = [asyncio.create_task(client.send(outbound(address()))) for _ in range(20)]
        await asyncio.sleep(0)  # each starts: two take the connections, 18 wait for one
        await client.close()
        outcomes = await asyncio.gather(*sends)
        sent = [o for o in outcomes if isinstance(o, Sent)]
        turned_away = [o for o in outcomes if isinstance(o, Retry)]
        assert len(sent) == 2  # the two holding the pool's connections finished
        assert len(turned_away) == 18  # those waiting for one are to be tried again
        assert {o.code for o in turned_away} == {ERR_PROVIDER_UNAVAILABLE}
        assert await server.wait_for_count(len(sent)) == len(sent)
        await _until(lambda: relay.open == 0)
    finally:
        await relay.stop()


@pytest.mark.integration
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_against_a_plain_server_is_a_config_error(
    mailpit: Mailpit, security: str
) -> None:
    meta = metadata(mailpit.host, mailpit.smtp_port, security=security, connectTimeoutSeconds=5)
    client = build(channel(meta))
    outcome = await client.send(outbound(address()))
    await client.close()
    assert isinstance(outcome, Failed), outcome
    assert outcome.code == ERR_CHANNEL_CONFIG
