"""Standard Webhooks signatures, checked as a receiver checks them: with the
``standardwebhooks`` package (the spec's own Python library), and against the spec's
published example."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clarion_shared.webhook_signing import (
    SECRET_PREFIX,
    BadSecret,
    new_secret,
    signature,
    signed_headers,
)


def test_the_specs_example_signature() -> None:
    # The example of the Standard Webhooks spec (and Svix's docs).
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@settings(max_examples=50, deadline=None)
@given(
    body=st.binary(max_size=2048),
    msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True),
)
def test_a_receiver_verifies_what_is_signed(body: bytes, msg_id: str) -> None:
    secret = new_secret()
    headers = signed_headers([secret], msg_id, int(time.time()), body)
    Webhook(secret).verify(body, headers, json_parse=False)


def test_a_changed_body_id_or_time_is_refused() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers([secret], "msg_1", now, b'{"a":1}')
    receiver = Webhook(secret)
    receiver.verify(b'{"a":1}', headers, json_parse=False)
    for body, changed in (
        (b'{"a":2}', headers),
        (b'{"a":1}', {**headers, "webhook-id": "msg_2"}),
        (b'{"a":1}', {**headers, "webhook-timestamp": str(now + 1)}),
    ):
        with pytest.raises(WebhookVerificationError):
            receiver.verify(body, changed, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(b'{"a":1}', headers, json_parse=False)


def test_during_a_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    headers = signed_headers([new, old], "msg_r", int(time.time()), b"{}")
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(b"{}", headers, json_parse=False)
    Webhook(new).verify(b"{}", headers, json_parse=False)


def test_secrets_are_new_each_time_and_bad_ones_refused() -> None:
    made = {new_secret() for _ in range(20)}
    assert len(made) == 20
    assert all(secret.startswith(SECRET_PREFIX) for secret in made)
    for bad in ("whsec_", "whsec_not base64!", ""):
        with pytest.raises(BadSecret):
            signature(bad, "msg_1", 1, b"")
    with pytest.raises(BadSecret):
        signed_headers([], "msg_1", 1, b"")
