"""Email over SMTP (API.md Channels ``email``): one pool of connections per channel.

``build(config)`` reads the channel's settings (``EmailSettings``); ``send`` checks the
recipient (``contact["email"]``) and the content, composes the message
(``email_message``) and runs one SMTP transaction (``MAIL``, ``RCPT``, ``DATA``) on a
pooled connection; ``classify`` turns what went wrong into an outcome:

``send_committed`` is the same transaction in two phases (``TwoPhaseProvider``): the
message is written without its ending dot, then ``commit`` is awaited (the worker
notes the hand-over), then the dot is written; a server that loses the connection
before the dot discards the message (RFC 5321, 4.1.1.4), so a worker killed before
the note sends nothing, and one killed after it may have had the message taken. The
note is started when the message takes its connection, so its round trip overlaps the
message's ``MAIL``, ``RCPT`` and ``DATA`` instead of following them: a worker killed
leaves at most ``poolSize`` notes of messages that may not have been taken, which its
successor sends as possibly taken (``resent``, same Message-ID). Starting notes
further ahead (two pools' worth) measured no faster on the 2-core bench machine, whose
CPU is the limit, and would flag more messages ``resent`` after a kill.

- 250 to ``DATA``: ``Sent`` (the server's queue id when its answer names one, else the
  ``Message-ID``, which ``idempotency_key`` fixes);
- an SMTP 4xx, a timeout, a refused, reset or closed connection: ``Retry``;
- an SMTP 5xx: ``Failed`` with ``SMTP_<code>`` and the server's words; a refused login
  (535 and kin), a missing STARTTLS or AUTH, an untrusted certificate:
  ``Failed`` with ``ERR_CHANNEL_CONFIG``.

The pool (``SmtpPool``) holds at most ``poolSize`` connections: a send takes one of its
slots, reuses the connection used last (or opens one), and gives it back clean, or
closes it after a timeout, a lost connection, a cancelled send or a failed ``RSET``.
aiosmtplib runs one command at a time per connection, so connections, not tasks, are
what makes sends concurrent. A connection the server closed while idle is noticed
(by the library) and replaced; one idle for longer than ``maxIdleSeconds`` is reopened
rather than trusted; a reused one that fails at once with ``MAIL`` is retried once on a
fresh connection (nothing of the message had been sent).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPDataError,
    SMTPException,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from pydantic import ValidationError

from clarion_shared.channel_settings.email import EmailSettings, email_address
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.config_channels import ChannelConfig

from .base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_CONTACT_POINT,
    ERR_INVALID_CONTENT,
    ERR_NO_CONTACT_POINT,
    ERR_PROVIDER_UNAVAILABLE,
    Commit,
    ConfigError,
    Failed,
    Outbound,
    Outcome,
    Retry,
    Sent,
    Superseded,
)
from .email_message import EmailContent, Letterhead

# Refusals of the login itself, not of one message: the channel's settings are wrong.
AUTH_CODES = frozenset({530, 534, 535, 538})
QUIT_TIMEOUT_S = 5.0
_QUEUE_ID = re.compile(r"queued as ([^\s;]+)", re.IGNORECASE)


def build(config: ChannelConfig, *, ssl_context: ssl.SSLContext | None = None) -> EmailProvider:
    """The client of an ``email`` channel. ``ssl_context`` replaces the system's trust
    store (tests trust their server's certificate with it); certificates are always
    verified. Raises ``ConfigError`` when the metadata cannot work."""
    if config.channel_type != "email":
        raise ConfigError(f"channel {config.channel_id} is {config.channel_type}, not email")
    try:
        settings = EmailSettings.model_validate(config.metadata)
    except ValidationError as exc:
        raise ConfigError(f"email channel {config.channel_id}: {describe(exc)}") from None
    return EmailProvider(settings, ssl_context=ssl_context)


def describe(exc: ValidationError) -> str:
    """Where and what, without the values (they may hold a password)."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "metadata"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def recipient(contact: JsonObject) -> str | Failed:
    """The address to send to, from the user's contact points."""
    raw = contact.get("email")
    if raw is None or raw == "":
        return Failed(ERR_NO_CONTACT_POINT, "The user has no email address.")
    address = email_address(raw) if isinstance(raw, str) else None
    if address is None:
        return Failed(ERR_INVALID_CONTACT_POINT, "The user's email address is not valid.")
    return address


def classify(exc: BaseException) -> Retry | Failed:
    """What a failed SMTP exchange comes to (``send`` never raises for these)."""
    if isinstance(exc, SMTPResponseException) and 400 <= exc.code < 600:
        return _refusal(exc)
    tls = _tls_error(exc)
    if tls is not None and not isinstance(tls, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return Failed(ERR_CHANNEL_CONFIG, f"TLS with the SMTP server failed: {tls}")
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors too
        return Retry(ERR_PROVIDER_UNAVAILABLE, f"The SMTP server did not answer in time: {exc}")
    if isinstance(exc, OSError | SMTPResponseException):  # connection errors; odd replies
        return Retry(ERR_PROVIDER_UNAVAILABLE, f"The SMTP server is unavailable: {exc}")
    if isinstance(exc, SMTPException):  # e.g. no STARTTLS or no AUTH offered
        return Failed(ERR_CHANNEL_CONFIG, f"The SMTP server cannot work as set: {exc}")
    return Retry(ERR_PROVIDER_UNAVAILABLE, f"SMTP failed: {exc!r}")


def _refusal(exc: SMTPResponseException) -> Retry | Failed:
    said = f"{exc.code} {exc.message}".strip()
    if isinstance(exc, SMTPAuthenticationError) and exc.code >= 500:
        return Failed(ERR_CHANNEL_CONFIG, f"The SMTP server refused the login: {said}")
    if exc.code in AUTH_CODES:
        return Failed(ERR_CHANNEL_CONFIG, f"The SMTP server wants a login or TLS: {said}")
    if exc.code < 500:
        return Retry(f"SMTP_{exc.code}", said)
    return Failed(f"SMTP_{exc.code}", said)


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def provider_id(response: SMTPResponse, message_id: str) -> str:
    """The server's queue id when its answer to ``DATA`` names one (``queued as X``)."""
    found = _QUEUE_ID.search(response.message)
    return found.group(1) if found else message_id


class PoolClosed(Exception):
    """The client was closed (its channel changed or the worker stops)."""


class SmtpPool:
    """At most ``settings.pool_size`` SMTP connections to one server, reused."""

    def __init__(self, settings: EmailSettings, ssl_context: ssl.SSLContext | None) -> None:
        self._settings = settings
        self._ssl_context = ssl_context
        self._helo_name = settings.helo_name
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._idle: list[tuple[SMTP, float]] = []  # (connection, idle since), newest last
        self._closed = False
        self.opened = 0  # connections opened so far

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def deliver(
        self, sender: str, to: str, message: bytes, commit: Commit | None = None
    ) -> SMTPResponse | Superseded:
        """One transaction (in two phases with ``commit``, started with the
        transaction: see the module); raises what aiosmtplib raised (``classify``)."""
        async with self._slots:
            if self._closed:
                raise PoolClosed
            noted = _started(commit)
            try:
                smtp = self._take_idle()
                if smtp is not None:
                    try:
                        return await self._transaction(
                            smtp, sender, to, message, noted, reused=True
                        )
                    except _Stale:
                        pass  # the server had closed it: once more, on a fresh connection
                smtp = await self._open()
                return await self._transaction(smtp, sender, to, message, noted, reused=False)
            finally:
                if noted is not None:  # its failure is read, awaited or not (a refusal)
                    noted.add_done_callback(_retrieved)

    async def _transaction(
        self,
        smtp: SMTP,
        sender: str,
        to: str,
        message: bytes,
        noted: asyncio.Future[bool] | None,
        *,
        reused: bool,
    ) -> SMTPResponse | Superseded:
        clean = False
        try:
            try:
                await _mail(smtp, sender, reused)
                await smtp.rcpt(to)
                if noted is None:
                    response: SMTPResponse | Superseded = await smtp.data(message)
                else:
                    response = await _data_committed(smtp, message, noted)
            except SMTPResponseException:
                clean = await _reset(smtp)  # a refusal: the connection itself is fine
                raise
            # An abandoned message leaves the connection mid-DATA: it is closed.
            clean = not isinstance(response, Superseded)
            return response
        finally:
            self._give_back(smtp, clean)

    def _take_idle(self) -> SMTP | None:
        oldest = time.monotonic() - self._settings.max_idle_seconds
        while self._idle:
            smtp, since = self._idle.pop()
            if smtp.is_connected and since >= oldest:
                return smtp
            smtp.close()
        return None

    def _give_back(self, smtp: SMTP, clean: bool) -> None:
        if clean and smtp.is_connected and not self._closed:
            self._idle.append((smtp, time.monotonic()))
        else:
            smtp.close()

    async def _open(self) -> SMTP:
        settings, server = self._settings, self._settings.smtp
        if self._helo_name is None:
            self._helo_name = await asyncio.to_thread(socket.getfqdn)
        if self._ssl_context is None and server.security != "none":
            self._ssl_context = await asyncio.to_thread(ssl.create_default_context)
        password = server.password.get_secret_value() if server.password is not None else None
        smtp = SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=password if server.username is not None else None,
            local_hostname=self._helo_name,
            timeout=settings.timeout_seconds,
            use_tls=server.security == "tls",
            start_tls=server.security == "starttls",
            tls_context=self._ssl_context,
        )
        await smtp.connect(timeout=settings.connect_timeout_seconds)
        self.opened += 1
        return smtp

    async def close(self) -> None:
        """Wait for the sends in flight (each bounded by its timeouts), then QUIT every
        connection. Sends after this answer ``PoolClosed``."""
        if self._closed:
            return
        self._closed = True
        size = self._settings.pool_size
        for _ in range(size):
            await self._slots.acquire()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(smtp) for smtp, _ in idle))
        for _ in range(size):  # those still waiting for a slot find the pool closed
            self._slots.release()


async def _data_committed(
    smtp: SMTP, message: bytes, noted: asyncio.Future[bool]
) -> SMTPResponse | Superseded:
    """``DATA`` with the message, the commit's answer, then the ending dot (aiosmtplib's
    own ``data`` in two steps, with its public calls: the dot goes as a command line)."""
    start = await smtp.execute_command(b"DATA")
    if start.code != 354:
        raise SMTPDataError(start.code, start.message)
    body = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    if smtp.protocol is None:
        raise SMTPServerDisconnected("Connection lost")
    smtp.protocol.write(body)
    try:
        go = await asyncio.shield(noted)  # a cancelled send leaves the note to finish
    except BaseException:
        smtp.close()  # the server drops the unfinished message
        raise
    if not go:
        return Superseded()
    response = await smtp.execute_command(b".")
    if response.code != 250:
        raise SMTPDataError(response.code, response.message)
    return response


def _started(commit: Commit | None) -> asyncio.Future[bool] | None:
    if commit is None:
        return None
    return asyncio.ensure_future(commit())


def _retrieved(future: asyncio.Future[bool]) -> None:
    if not future.cancelled():
        future.exception()


class _Stale(Exception):
    """A reused connection was found closed at ``MAIL``: nothing was sent on it."""


async def _mail(smtp: SMTP, sender: str, reused: bool) -> None:
    try:
        await smtp.mail(sender)
    except SMTPServerDisconnected as exc:
        if reused:
            raise _Stale from exc
        raise


async def _reset(smtp: SMTP) -> bool:
    """RSET after a refusal, so the next transaction starts clean; False when the
    connection cannot be trusted any more."""
    if not smtp.is_connected:
        return False
    try:
        await smtp.rset()
    except (SMTPException, OSError):
        return False
    return True


async def _quit(smtp: SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit(timeout=QUIT_TIMEOUT_S)
    except (SMTPException, OSError):
        pass
    finally:
        smtp.close()


class EmailProvider:
    """The ``Provider`` of an ``email`` channel; safe to call from many tasks."""

    def __init__(self, settings: EmailSettings, *, ssl_context: ssl.SSLContext | None = None):
        self.settings = settings
        self.letterhead = Letterhead(settings)
        self.pool = SmtpPool(settings, ssl_context)

    async def send(self, outbound: Outbound) -> Outcome:
        found = await self._send(outbound, None)
        assert not isinstance(found, Superseded)  # only a commit abandons
        return found

    async def send_committed(self, outbound: Outbound, commit: Commit) -> Outcome | Superseded:
        return await self._send(outbound, commit)

    async def _send(self, outbound: Outbound, commit: Commit | None) -> Outcome | Superseded:
        to = recipient(outbound.contact)
        if isinstance(to, Failed):
            return to
        content = EmailContent.parse(outbound.content)
        if isinstance(content, str):
            return Failed(ERR_INVALID_CONTENT, content)
        message_id = self.letterhead.message_id(outbound.idempotency_key)
        message = self.letterhead.compose(to, message_id, content)
        try:
            response = await self.pool.deliver(self.letterhead.sender, to, message, commit)
        except PoolClosed:
            return Retry(ERR_PROVIDER_UNAVAILABLE, "The email channel's client was closed.")
        except (SMTPException, OSError) as exc:
            return classify(exc)
        if isinstance(response, Superseded):
            return response
        return Sent(provider_id(response, message_id), {"messageId": message_id})

    async def close(self) -> None:
        await self.pool.close()
