"""Settings and content of a ``whatsapp`` channel: Meta's WhatsApp Cloud API.

Settings: ``{phoneNumberId, accessToken, baseUrl?, apiVersion?, rateLimitPerSecond?}``
(with ``timeoutSeconds`` and ``maxConnections``, :mod:`.http_common`). A message is
POSTed to ``{baseUrl}/{apiVersion}/{phoneNumberId}/messages`` with ``Authorization:
Bearer {accessToken}``; ``baseUrl`` defaults to ``https://graph.facebook.com`` (another
lets a test server or a provider hosting the Cloud API stand in), ``apiVersion`` to
:data:`DEFAULT_API_VERSION`. ``phoneNumberId`` is the business number's id in Meta's
WhatsApp Manager (digits), not the number itself; ``accessToken`` a system user's token
with ``whatsapp_business_messaging``.

Content of a ``whatsapp`` template (rendered, every string may hold ``{{variables}}``),
one of two kinds:

- text: ``{text, previewUrl?}`` → ``{"type": "text", "text": {"body": text,
  "preview_url": previewUrl}}``. WhatsApp delivers free text only within 24 hours of
  the user's last message to the business (outside, Meta answers 131047): use a template
  to start a conversation.
- an approved message template: ``{template: {name, language, parameters?,
  components?}}`` → ``{"type": "template", "template": {"name": name, "language":
  {"code": language}, "components": [...]}}``. ``parameters`` (strings) fill the
  template body's ``{{1}}``, ``{{2}}``… in order; ``components`` are Meta's own
  component objects (header, buttons), sent as they are after the body's.

The receiver is the user's ``contactNumber`` (E.164), sent without its ``+``.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .http_common import HttpSettings
from .http_common import base_url as checked_base_url

GRAPH_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
TEXT_MAX = 4096  # characters of a text message's body (Meta's limit)


class WhatsAppSettings(HttpSettings):
    phone_number_id: str = Field(pattern=r"^[0-9]{1,32}$")
    access_token: str = Field(min_length=1, max_length=4096, repr=False)
    base_url: str = GRAPH_BASE_URL
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$")

    check_base_url = field_validator("base_url")(checked_base_url)

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/{self.api_version}/{self.phone_number_id}/messages"


class _Content(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )


class WhatsAppTemplate(_Content):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")  # en, en_US, zh_Hant...
    parameters: list[str] = Field(default_factory=list, max_length=100)
    components: list[dict[str, JsonValue]] = Field(default_factory=list, max_length=20)

    def meta_components(self) -> list[dict[str, JsonValue]]:
        """Meta's ``components``: the body's text parameters, then those given."""
        out: list[dict[str, JsonValue]] = []
        if self.parameters:
            parameters: list[JsonValue] = [{"type": "text", "text": p} for p in self.parameters]
            out.append({"type": "body", "parameters": parameters})
        return out + list(self.components)


class WhatsAppContent(_Content):
    """A rendered ``whatsapp`` content: ``text`` or ``template``, exactly one."""

    text: str | None = Field(default=None, min_length=1, max_length=TEXT_MAX)
    preview_url: bool = False
    template: WhatsAppTemplate | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.text is None) == (self.template is None):
            raise ValueError("a whatsapp content needs text or template, exactly one of them")
        return self

    def message(self) -> dict[str, JsonValue]:
        """The Cloud API's message fields for this content (without the receiver)."""
        if self.template is not None:
            template: dict[str, JsonValue] = {
                "name": self.template.name,
                "language": {"code": self.template.language},
            }
            components = self.template.meta_components()
            if components:
                template["components"] = list[JsonValue](components)
            return {"type": "template", "template": template}
        return {"type": "text", "text": {"body": self.text, "preview_url": self.preview_url}}
