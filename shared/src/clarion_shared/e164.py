"""Phone numbers in E.164 (ITU-T): ``+``, a country code that does not start with 0, and
at most 15 digits in all, with no spaces or punctuation. API.md keeps a user's
``contactNumber`` in this form; the SMS and WhatsApp channels deliver only to it."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def is_e164(value: object) -> bool:
    """Whether ``value`` is a string in E.164 form (``+15551234567``)."""
    return isinstance(value, str) and E164.fullmatch(value) is not None
