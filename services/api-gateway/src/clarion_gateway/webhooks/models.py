"""HTTP models of the webhook routes.

Request models ignore fields they do not know (CometChat clients send extras, and send
back what they read). The signing secret is shown when it is made (the create's answer,
a rotation's answer) and never again; the Basic Auth password is never shown.
"""

from __future__ import annotations

from pydantic import Field

from clarion_shared.api import ApiModel

from .domain import CREDENTIAL_MAX_LENGTH, NewWebhook, Webhook, WebhookChanges

_URL = "Where deliveries go: https, or http when CLARION_WEBHOOKS_ALLOW_PRIVATE is set."
_TRIGGERS = "API.md's triggers (after_notification_created, after_feed_item_sent, ...); each once."
_MAX_TRIGGERS = 100  # a list of known triggers, repeats included; more is not one


def _is_none(value: object) -> bool:
    return value is None


class WebhookCreate(ApiModel):
    """Any field not listed is accepted and ignored."""

    name: str = Field(min_length=1, max_length=100)
    webhook_url: str = Field(alias="webhookURL", description=_URL)
    triggers: list[str] = Field(min_length=1, max_length=_MAX_TRIGGERS, description=_TRIGGERS)
    enabled: bool = True
    use_basic_auth: bool = Field(default=False, description="Send username and password.")
    username: str | None = Field(default=None, min_length=1, max_length=CREDENTIAL_MAX_LENGTH)
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=CREDENTIAL_MAX_LENGTH,
        description="Stored, sent to the endpoint, never returned.",
    )

    def to_new(self) -> NewWebhook:
        return NewWebhook(
            name=self.name,
            url=self.webhook_url,
            triggers=self.triggers,
            enabled=self.enabled,
            use_basic_auth=self.use_basic_auth,
            username=self.username,
            password=self.password,
        )


class WebhookUpdate(ApiModel):
    """Only the fields given change. Enabling a webhook the emitter disabled clears
    ``disabledReason``. ``rotateSecret: true`` makes a new signing secret, answered
    once as ``signingSecret``; deliveries are signed with the old one too for 24 hours,
    so receivers switch without a gap. Any field not listed is accepted and ignored."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    webhook_url: str | None = Field(default=None, alias="webhookURL", description=_URL)
    triggers: list[str] | None = Field(
        default=None, min_length=1, max_length=_MAX_TRIGGERS, description=_TRIGGERS
    )
    enabled: bool | None = None
    use_basic_auth: bool | None = None
    username: str | None = Field(default=None, min_length=1, max_length=CREDENTIAL_MAX_LENGTH)
    password: str | None = Field(default=None, min_length=1, max_length=CREDENTIAL_MAX_LENGTH)
    rotate_secret: bool = False

    def to_changes(self) -> WebhookChanges:
        return WebhookChanges(
            name=self.name,
            url=self.webhook_url,
            triggers=self.triggers,
            enabled=self.enabled,
            use_basic_auth=self.use_basic_auth,
            username=self.username,
            password=self.password,
            rotate_secret=self.rotate_secret,
        )


class WebhookPublic(ApiModel):
    id: str
    name: str
    webhook_url: str = Field(alias="webhookURL")
    triggers: list[str]
    enabled: bool
    use_basic_auth: bool
    username: str | None
    disabled_reason: str | None = Field(
        description="Why the webhook-emitter disabled it (gone: it answered 410; failing: "
        "for too long); null unless it did. Enabling it again clears it."
    )
    created_at: int
    updated_at: int

    @classmethod
    def fields_of(cls, webhook: Webhook) -> dict[str, object]:
        return {
            "id": webhook.webhook_id,
            "name": webhook.name,
            "webhook_url": webhook.url,
            "triggers": list(webhook.triggers),
            "enabled": webhook.enabled,
            "use_basic_auth": webhook.use_basic_auth,
            "username": webhook.username,
            "disabled_reason": webhook.disabled_reason,
            "created_at": webhook.created_at,
            "updated_at": webhook.updated_at // 1000,
        }

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookPublic:
        return cls.model_validate(cls.fields_of(webhook))


class WebhookCreated(WebhookPublic):
    signing_secret: str = Field(
        description="whsec_...: verifies the webhook-signature header; shown this once."
    )

    @classmethod
    def created(cls, webhook: Webhook) -> WebhookCreated:
        fields = {**cls.fields_of(webhook), "signing_secret": webhook.signing_secret}
        return cls.model_validate(fields)


class WebhookUpdated(WebhookPublic):
    signing_secret: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="The new signing secret, only in the answer of a rotation (rotateSecret).",
    )

    @classmethod
    def updated(cls, webhook: Webhook, rotated: bool) -> WebhookUpdated:
        secret = webhook.signing_secret if rotated else None
        return cls.model_validate({**cls.fields_of(webhook), "signing_secret": secret})
