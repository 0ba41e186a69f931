"""What a template's content must hold, per channel type (API.md Templates).

``in_app`` and ``push``: ``title`` and ``body``; ``email``: ``subject`` and ``text``
and/or ``html``; ``sms``: ``text``; ``whatsapp``: ``{text}`` or ``{template: {name,
language, parameters?}}``, exactly one (``clarion_shared.channel_settings.whatsapp``);
``custom``: anything. Pure rules, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from clarion_shared.channel_settings.whatsapp import WhatsAppContent
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.errors import Invalid
from clarion_shared.templating import tokens_in

# Per channel type, groups of content fields: each group needs one non-empty string.
CONTENT_REQUIREMENTS: Mapping[ChannelType, tuple[tuple[str, ...], ...]] = {
    "in_app": (("title",), ("body",)),
    "push": (("title",), ("body",)),
    "email": (("subject",), ("text", "html")),
    "sms": (("text",),),
    "whatsapp": (),  # its own rule: whatsapp_problems
    "custom": (),
}


def default_content(
    channel_type: ChannelType, name: str, alternative_text: str | None
) -> JsonObject:
    """Content for a channel sent without any (CometChat: "defaults applied if omitted"):
    the template's name as title or subject, its alternative text (or name) as body."""
    body = alternative_text or name
    if channel_type in ("in_app", "push"):
        return {"title": name, "body": body}
    if channel_type == "email":
        return {"subject": name, "text": body}
    if channel_type in ("sms", "whatsapp"):
        return {"text": body}
    return {}


def whatsapp_problems(content: JsonObject) -> list[dict[str, str]]:
    """The content checked with the model the delivery worker renders into. A value that
    holds a ``{{variable}}`` is judged once rendered (a ``language`` of ``{{lang}}``
    is fine here), so its shape errors wait for the send."""
    try:
        WhatsAppContent.model_validate(content)
    except ValidationError as exc:
        return [
            {
                "channelType": "whatsapp",
                "field": ".".join(str(p) for p in error["loc"]) or "text/template",
                "message": str(error["msg"]).removeprefix("Value error, "),
            }
            for error in exc.errors(include_url=False)
            if not (isinstance(error["input"], str) and tokens_in(error["input"]))
        ]
    return []


def content_problems(channel_type: ChannelType, content: JsonObject) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    for group in CONTENT_REQUIREMENTS[channel_type]:
        if not any(isinstance(content.get(k), str) and content.get(k) for k in group):
            wanted = " or ".join(group)
            problems.append(
                {
                    "channelType": channel_type,
                    "field": group[0] if len(group) == 1 else "/".join(group),
                    "message": f"{channel_type} content needs a non-empty {wanted}",
                }
            )
    if channel_type == "whatsapp":
        problems.extend(whatsapp_problems(content))
    return problems


def check_content(channel_type: ChannelType, content: JsonObject) -> JsonObject:
    problems = content_problems(channel_type, content)
    if problems:
        raise Invalid("The channel content is not valid.", details=problems)
    return content
