"""The request checks and answer bodies of the providers :mod:`.fake_messaging` stands
in for: Twilio's Messages API and Meta's WhatsApp Cloud API, as their documentation
gives them (error codes, envelopes, the Message resource). Pure: no I/O."""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
JsonDict = dict[str, Any]
Problem = tuple[int, int, str]  # HTTP status, provider code, message


@dataclass(frozen=True)
class TwilioAccount:
    sid: str = "AC" + "0" * 32
    token: str = "twilio-token"
    senders: frozenset[str] = frozenset({"+15550000000", "ClarionTest", "MG" + "1" * 32})

    def authorized(self, header: str | None) -> bool:
        """Whether ``header`` is HTTP Basic Auth of this account's SID and token."""
        scheme, _, encoded = (header or "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            return False
        return scheme.lower() == "basic" and decoded == f"{self.sid}:{self.token}"

    def problem(self, form: dict[str, str]) -> Problem | None:
        """What Twilio refuses in a create-message form, in its order of checks."""
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        if not to:
            return 400, 21604, "A 'To' phone number is required."
        if not sender:
            return 400, 21603, "A 'From' phone number is required."
        if not body:
            return 400, 21602, "Message body is required."
        if not E164.fullmatch(to):
            return 400, 21211, f"Invalid 'To' Phone Number: {to}"
        if sender not in self.senders:
            return 400, 21606, "The From phone number is not a valid, SMS-capable number."
        if len(body) > 1600:
            return 400, 21617, "The concatenated message body exceeds the 1600 character limit."
        return None

    def message(self, form: dict[str, str]) -> JsonDict:
        """The Message resource a 201 answers (the fields clients read)."""
        sid = "SM" + secrets.token_hex(16)
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        return {
            "sid": sid,
            "account_sid": self.sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "api_version": "2010-04-01",
            "date_created": now,
            "uri": f"/2010-04-01/Accounts/{self.sid}/Messages/{sid}.json",
        }


def twilio_error(status: int, code: int, message: str) -> JsonDict:
    info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": info, "status": status}


@dataclass(frozen=True)
class WhatsAppAccount:
    phone_number_id: str = "106540352242922"
    token: str = "whatsapp-token"
    # template name → (languages, number of body parameters)
    templates: dict[str, tuple[frozenset[str], int]] = field(
        default_factory=lambda: {"order_update": (frozenset({"en_US", "de"}), 2)}
    )

    def problem(
        self, authorization: str | None, version: str, phone_id: str, message: JsonDict
    ) -> Problem | None:
        """What the Cloud API refuses in a send-message call."""
        if authorization != f"Bearer {self.token}":
            return 401, 190, "Invalid OAuth access token - Cannot parse access token"
        if not re.fullmatch(r"v\d+\.\d+", version):
            return 400, 2500, "Unknown path components"
        if phone_id != self.phone_number_id:
            return 400, 100, "Unsupported post request. Object does not exist."
        if message.get("messaging_product") != "whatsapp":
            return 400, 100, "The parameter messaging_product is required."
        if message.get("recipient_type", "individual") != "individual":
            return 400, 100, "Invalid parameter recipient_type."
        if not re.fullmatch(r"\+?[1-9]\d{6,14}", str(message.get("to", ""))):
            return 400, 100, "The parameter to is required and must be a phone number."
        kind = message.get("type", "text")
        if kind == "text":
            text = message.get("text")
            body = text.get("body") if isinstance(text, dict) else None
            if not isinstance(body, str) or not body or len(body) > 4096:
                return 400, 100, "The parameter text['body'] is required."
            return None
        if kind == "template":
            return self._template_problem(message.get("template"))
        return 400, 100, f"Unsupported message type {kind}."

    def _template_problem(self, template: Any) -> Problem | None:
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            return 400, 100, "The parameter template['name'] is required."
        language = template.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        if not isinstance(code, str):
            return 400, 100, "The parameter template['language']['code'] is required."
        known = self.templates.get(template["name"])
        if known is None or code not in known[0]:
            return 404, 132001, "Template name does not exist in the translation"
        components = template.get("components") or []
        bodies = [c for c in components if isinstance(c, dict) and c.get("type") == "body"]
        given = sum(len(c.get("parameters") or []) for c in bodies)
        if given != known[1]:
            return 400, 132000, "Number of parameters does not match the expected number"
        return None


def whatsapp_sent(message: JsonDict) -> JsonDict:
    """The 200 answer to an accepted send-message call."""
    to = str(message.get("to", ""))
    entry: JsonDict = {"id": "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()}
    if message.get("type") == "template":
        entry["message_status"] = "accepted"
    contact = {"input": to, "wa_id": to.removeprefix("+")}
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [entry]}


def graph_error(code: int, message: str) -> JsonDict:
    """The Graph API's error envelope, as the Cloud API answers it."""
    return {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": secrets.token_urlsafe(12),
        }
    }
