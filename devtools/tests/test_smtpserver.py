"""The tests' SMTP server (``clarion_devtools.smtpserver``: Mailpit, built by ``make
smtp-install``) and its API (``clarion_devtools.mailpit_api``).

Mail sent with ``smtplib`` is read back whole (parts, headers, every recipient, the
AUTH login); STARTTLS with required credentials refuses what skips either; implicit TLS
is TLS from the first byte; chaos triggers make ``RCPT TO`` and ``MAIL FROM`` fail with
a temporary code, and clearing them lets the same mail through, once.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from clarion_devtools import mailpit_api, smtpserver
from clarion_devtools.helpers import random_ref
from clarion_devtools.mailpit_api import Chaos, Summary, Trigger
from clarion_devtools.smtpserver import Mailpit, SMTPServerUnavailable

Factory = Callable[..., Mailpit]


def _email(to: str, subject: str = "Hello", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Clarion <noreply@clarion.test>"
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hi Alice,\nyour order shipped.\n")
    message.add_alternative("<p>Hi <b>Alice</b>, your order shipped.</p>", subtype="html")
    return message


def _send_plain(server: Mailpit, message: EmailMessage, to_addrs: list[str] | None = None) -> None:
    with smtplib.SMTP(server.host, server.smtp_port, timeout=10) as smtp:
        smtp.send_message(message, to_addrs=to_addrs)


async def _mine(server: Mailpit, recipient: str) -> list[Summary]:
    """What the (shared) server holds for ``recipient``."""
    return [m for m in await server.messages() if recipient in m.recipients]


def test_a_missing_binary_fails_and_says_how_to_build_it(tmp_path: Path) -> None:
    server = Mailpit(tmp_path, binary=tmp_path / "no-mailpit")
    with pytest.raises(SMTPServerUnavailable, match="make smtp-install"):
        server.start()


def test_the_cli_takes_install_only() -> None:
    assert smtpserver.main(["build"]) == 2


@pytest.mark.integration
def test_install_finds_the_built_binary(capsys: pytest.CaptureFixture[str]) -> None:
    assert smtpserver.main(["install"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == smtpserver.binary_path()
    assert printed.is_file()
    assert smtpserver.VERSION in printed.name


@pytest.mark.integration
async def test_a_multipart_email_is_read_back_whole(mailpit: Mailpit) -> None:
    alice, carol, hidden = (f"{random_ref(n)}@example.test" for n in ("alice", "carol", "bcc"))
    message = _email(
        f"Alice <{alice}>",
        subject="Your order ✓",
        Cc=carol,
        Reply_To="support@clarion.test",
        List_Unsubscribe="<https://clarion.test/u/1>, <mailto:unsub@clarion.test>",
        List_Unsubscribe_Post="List-Unsubscribe=One-Click",
    )
    with smtplib.SMTP(mailpit.host, mailpit.smtp_port, timeout=10) as smtp:
        smtp.login("any-user", "any-password")  # accept_any_auth
        smtp.send_message(message, to_addrs=[alice, carol, hidden])

    (summary,) = await _mine(mailpit, alice)
    received = await mailpit.message(summary.id)
    assert received.subject == "Your order ✓"
    assert received.sender == mailpit_api.Address("Clarion", "noreply@clarion.test")
    assert received.to == (mailpit_api.Address("Alice", alice),)
    assert received.recipients == (alice, carol, hidden)
    assert [a.address for a in received.bcc] == [hidden]
    assert [a.address for a in received.reply_to] == ["support@clarion.test"]
    assert received.text.strip() == "Hi Alice,\r\nyour order shipped."
    assert received.html.strip() == "<p>Hi <b>Alice</b>, your order shipped.</p>"
    assert received.header("list-unsubscribe") == [
        "<https://clarion.test/u/1>, <mailto:unsub@clarion.test>"
    ]
    assert received.header("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert received.header("X-Not-There") == []
    assert received.username == "any-user"
    assert b"multipart/alternative" in await mailpit.raw(summary.id)


@pytest.mark.integration
async def test_messages_pages_through_all_and_delete_all_empties(
    mailpit_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = mailpit_factory()
    monkeypatch.setattr(mailpit_api, "PAGE_SIZE", 3)
    sent = [f"{random_ref('page')}@example.test" for _ in range(7)]
    for to in sent:
        await asyncio.to_thread(_send_plain, server, _email(to))

    assert await server.wait_for_count(7) == 7
    listed = await server.messages()
    assert sorted(r for m in listed for r in m.recipients) == sorted(sent)
    await server.delete_all()
    assert await server.count() == 0
    assert await server.messages() == []


def _send_starttls(server: Mailpit, message: EmailMessage, login: tuple[str, str]) -> None:
    with smtplib.SMTP(server.host, server.smtp_port, timeout=10) as smtp:
        smtp.starttls(context=server.ssl_context())
        smtp.login(*login)
        smtp.send_message(message)


@pytest.mark.integration
async def test_starttls_with_auth_refuses_what_skips_either(mailpit_factory: Factory) -> None:
    server = mailpit_factory(tls="starttls", credentials=("clarion", "s3cret"))
    to = f"{random_ref('tls')}@example.test"

    with (
        smtplib.SMTP(server.host, server.smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPSenderRefused) as no_tls,  # MAIL before STARTTLS
    ):
        smtp.send_message(_email(to))
    assert no_tls.value.smtp_code == 530
    with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
        await asyncio.to_thread(_send_starttls, server, _email(to), ("clarion", "wrong"))
    assert wrong.value.smtp_code == 535
    with smtplib.SMTP(server.host, server.smtp_port, timeout=10) as smtp:
        smtp.starttls(context=server.ssl_context())
        with pytest.raises(smtplib.SMTPSenderRefused) as no_auth:  # TLS but no login
            smtp.send_message(_email(to))
    assert no_auth.value.smtp_code == 530

    await asyncio.to_thread(_send_starttls, server, _email(to), ("clarion", "s3cret"))
    (received,) = await server.messages()
    assert received.recipients == (to,)
    assert received.username == "clarion"


@pytest.mark.integration
async def test_implicit_tls_speaks_tls_from_the_first_byte(mailpit_factory: Factory) -> None:
    server = mailpit_factory(tls="implicit")
    to = f"{random_ref('smtps')}@example.test"

    def send() -> str | None:
        with smtplib.SMTP_SSL(
            server.host, server.smtp_port, context=server.ssl_context(), timeout=10
        ) as smtp:
            smtp.send_message(_email(to))
            return smtp.sock.version() if isinstance(smtp.sock, ssl.SSLSocket) else None

    assert await asyncio.to_thread(send) in {"TLSv1.2", "TLSv1.3"}
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that trusts only the system
        smtplib.SMTP_SSL(server.host, server.smtp_port, context=ssl.create_default_context())
    (received,) = await server.messages()
    assert received.recipients == (to,)


@pytest.mark.integration
async def test_chaos_refuses_with_a_4xx_then_recovers(mailpit: Mailpit) -> None:
    to = f"{random_ref('chaos')}@example.test"

    async with mailpit.refusing() as in_force:
        assert in_force == Chaos(recipient=Trigger(451, 100))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await asyncio.to_thread(_send_plain, mailpit, _email(to))
        assert refused.value.recipients == {to: (451, b"Chaos recipient error")}
    async with mailpit.refusing(Chaos(sender=Trigger(421, 100))):
        with pytest.raises(smtplib.SMTPSenderRefused) as sender:
            await asyncio.to_thread(_send_plain, mailpit, _email(to))
        assert sender.value.smtp_code == 421
    assert await mailpit.chaos() == Chaos()

    await asyncio.to_thread(_send_plain, mailpit, _email(to, subject="after"))
    assert [m.subject for m in await _mine(mailpit, to)] == ["after"]
