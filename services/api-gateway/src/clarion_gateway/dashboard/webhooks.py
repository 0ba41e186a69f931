"""The webhooks as the dashboard reads and changes them: the form of an endpoint, its
errors in words, and its deliveries from the webhook-emitter's internal API, called as
``GET /v3/webhooks/{id}/deliveries``, ``POST .../deliveries/{id}/retry`` and ``POST
.../replay`` call it (``webhooks.deliveries``). The endpoints themselves go through
``webhooks.service``'s use cases, as ``/v3/webhooks`` does: one path to the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypedDict
from urllib.parse import quote, urlencode

from clarion_shared.api import Data, Paged
from clarion_shared.contracts.config_webhooks import TRIGGERS
from clarion_shared.errors import DomainError
from clarion_shared.public.webhook_deliveries import (
    DELIVERY_STATUSES,
    DeliveryPublic,
    ReplayAccepted,
)

from ..proxies.peers import Peers
from ..webhooks.deliveries import MAX_TIMESTAMP, WebhookReplay, emitter_path
from ..webhooks.domain import CREDENTIAL_MAX_LENGTH, NewWebhook, WebhookChanges
from ..webhooks.models import WebhookPublic
from .forms import DEFAULT_PER_PAGE, PageQuery, bounded_int, day_seconds, one_of, page_fields
from .peer_reads import PeerCalls, PeerProblem, error_message

NAME_MAX_LENGTH = 100  # as WebhookCreate's name
# What each trigger means (API.md, Webhooks): the hint under its checkbox.
TRIGGER_HINTS: dict[str, str] = {
    "after_notification_created": "Once per send, when its records exist.",
    "after_feed_item_sent": "An in-app feed item was written.",
    "after_feed_item_delivered": "A feed item was marked delivered.",
    "after_feed_item_read": "A feed item was read.",
    "after_feed_item_engaged": "A user acted on a feed item.",
    "after_push_notification_sent": "A push provider accepted a notification.",
    "after_delivery_failed": "A delivery failed for good (final failures only).",
    "after_batch_completed": "A batch finished.",
    "after_campaign_completed": "A campaign completed (some recipients may have failed).",
    "after_campaign_failed": "A campaign failed for every recipient.",
    "after_webhook_disabled": "Another endpoint of this app was disabled.",
}
# The API's field names as the form labels them, for the domain's refusals.
_LABELS = {
    "webhookURL": "URL",
    "triggers": "Events",
    "username": "Username",
    "password": "Password",
    "name": "Name",
}
_WORDS = (("webhookURL", "the URL"), ("useBasicAuth", "Basic Auth"))


def in_words(exc: DomainError) -> list[str]:
    """A use case's refusal as the form says it: its fields by their labels."""
    details = exc.details if isinstance(exc.details, list) else []
    said = [
        f"{_LABELS.get(d['field'].split('.')[0], d['field'])} {d['message']}."
        for d in details
        if isinstance(d, dict) and isinstance(d.get("field"), str) and d.get("message")
    ]
    out = said or [exc.message]
    for name, words in _WORDS:
        out = [line.replace(name, words) for line in out]
    return out


class _Endpoint(TypedDict):
    """What a new webhook and an update both take from the form."""

    name: str
    url: str
    triggers: Sequence[str]
    enabled: bool
    use_basic_auth: bool
    username: str | None
    password: str | None


@dataclass(frozen=True)
class WebhookForm:
    """The new/edit form, as typed (the password is never shown back)."""

    name: str = ""
    url: str = ""
    triggers: tuple[str, ...] = ()
    enabled: bool = True
    use_basic_auth: bool = False
    username: str = ""
    password: str = ""

    @classmethod
    def posted(cls, fields: Mapping[str, str], triggers: Sequence[str]) -> WebhookForm:
        """Checkboxes: present when ticked; the events in API.md's order."""
        ticked = set(triggers)
        return cls(
            name=fields.get("name", "").strip(),
            url=fields.get("webhookURL", "").strip(),
            triggers=tuple(t for t in TRIGGERS if t in ticked),
            enabled="enabled" in fields,
            use_basic_auth="useBasicAuth" in fields,
            username=fields.get("username", "").strip(),
            password=fields.get("password", ""),
        )

    @classmethod
    def of(cls, webhook: WebhookPublic) -> WebhookForm:
        return cls(
            name=webhook.name,
            url=webhook.webhook_url,
            triggers=tuple(webhook.triggers),
            enabled=webhook.enabled,
            use_basic_auth=webhook.use_basic_auth,
            username=webhook.username or "",
        )

    def problems(self) -> list[str]:
        """What the form refuses before the use case sees it (the API's request model)."""
        out = []
        if not self.name:
            out.append("Name is required.")
        elif len(self.name) > NAME_MAX_LENGTH:
            out.append(f"Name is at most {NAME_MAX_LENGTH} characters.")
        if not self.url:
            out.append("URL is required.")
        if not self.triggers:
            out.append("Choose at least one event.")
        for label, value in (("Username", self.username), ("Password", self.password)):
            if len(value) > CREDENTIAL_MAX_LENGTH:
                out.append(f"{label} is at most {CREDENTIAL_MAX_LENGTH} characters.")
        return out

    def without_password(self) -> WebhookForm:
        return replace(self, password="")

    def to_new(self) -> NewWebhook:
        return NewWebhook(**self._endpoint())

    def to_changes(self) -> WebhookChanges:
        """Every field the form holds; an empty password keeps the stored one."""
        return WebhookChanges(**self._endpoint())

    def _endpoint(self) -> _Endpoint:
        return {
            "name": self.name,
            "url": self.url,
            "triggers": self.triggers,
            "enabled": self.enabled,
            "use_basic_auth": self.use_basic_auth,
            "username": self.username or None,
            "password": self.password or None,
        }


def changed_fields(before: WebhookPublic, after: WebhookPublic) -> list[str]:
    """The API's names of what an update changed (the audit entry's detail)."""
    fields = ("name", "webhook_url", "triggers", "enabled", "use_basic_auth", "username")
    dumped_before = before.model_dump(by_alias=True)
    dumped_after = after.model_dump(by_alias=True)
    names = [WebhookPublic.model_fields[f].alias or f for f in fields]
    return [n for n in names if dumped_before.get(n) != dumped_after.get(n)]


@dataclass(frozen=True)
class DeliveriesFilter(PageQuery):
    """The deliveries' query string, as typed: what the filter shows back."""

    status: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> DeliveriesFilter:
        """Lenient: a value the page cannot use is dropped, never an error."""
        return cls(
            status=one_of(params.get("status"), DELIVERY_STATUSES) or "", **page_fields(params)
        )

    def emitter_query(self) -> str:
        """``GET /v3/webhooks/{id}/deliveries``'s parameters."""
        params: dict[str, str | int] = {"page": self.page, "perPage": self.per_page}
        if self.status:
            params["status"] = self.status
        return urlencode(params)


class DeliveriesProblem(PeerProblem):
    """The webhook-emitter could not answer, or refused; ``message`` says so in words."""


class EmitterDeliveries:
    """A webhook's deliveries, over the peers' client (``proxies.peers``). The caller
    has checked the webhook is the app's (``webhooks.service.get_webhook``), as the
    public routes do before they ask the emitter."""

    def __init__(self, peers: Peers) -> None:
        self._peer = PeerCalls(peers, "webhooks", "The webhook emitter", DeliveriesProblem)

    async def page(
        self, app_id: str, webhook_id: str, wanted: DeliveriesFilter
    ) -> Paged[DeliveryPublic]:
        path = f"{emitter_path(app_id, webhook_id)}/deliveries"
        answer = await self._peer.call("GET", path, wanted.emitter_query())
        if answer.status != 200:
            raise self._peer.failed(answer.status)
        return self._peer.parse(Paged[DeliveryPublic], answer.body)

    async def retry(self, app_id: str, webhook_id: str, delivery_id: str) -> DeliveryPublic:
        """Send a finished delivery again now; raises ``DeliveriesProblem`` (409 while it
        is pending, 404 for a delivery the webhook does not have)."""
        path = f"{emitter_path(app_id, webhook_id)}/deliveries/{quote(delivery_id, safe='')}/retry"
        answer = await self._peer.call("POST", path)
        if answer.status == 404:
            raise DeliveriesProblem(f"This webhook has no delivery {delivery_id[:200]}.", 404)
        if answer.status == 409:
            pending = "This delivery is pending: it is attempted on its schedule."
            raise DeliveriesProblem(error_message(answer.body, pending), 409)
        if answer.status != 202:
            raise self._peer.failed(answer.status)
        return self._peer.parse(Data[DeliveryPublic], answer.body).data

    async def replay(
        self, app_id: str, webhook_id: str, since: int, until: int | None
    ) -> ReplayAccepted:
        """Send again what failed between ``since`` and ``until`` (Unix seconds)."""
        body = WebhookReplay(since=since, until=until).model_dump_json(by_alias=True).encode()
        answer = await self._peer.call(
            "POST", f"{emitter_path(app_id, webhook_id)}/replay", body=body
        )
        if answer.status == 400:
            raise DeliveriesProblem(error_message(answer.body, "The dates are not valid."), 400)
        if answer.status != 202:
            raise self._peer.failed(answer.status)
        return self._peer.parse(Data[ReplayAccepted], answer.body).data


def replay_range(since: str, until: str) -> tuple[int, int | None] | list[str]:
    """The replay form's dates (UTC days, both included) as Unix seconds, or what is
    wrong with them, in words."""
    start = day_seconds(since, end=False)
    end = day_seconds(until, end=True) if until else None
    problems = []
    if start is None:
        problems.append("Since must be a date (YYYY-MM-DD).")
    if until and end is None:
        problems.append("Until must be a date (YYYY-MM-DD).")
    if start is not None and end is not None and end < start:
        problems.append("Until is before Since.")
    if problems:
        return problems
    assert start is not None
    return max(0, min(start, MAX_TIMESTAMP)), None if end is None else min(end, MAX_TIMESTAMP)


def notice_of(query: Mapping[str, str]) -> str | None:
    """What a change just did, said on the page it redirected to (``done=...``)."""
    done = query.get("done", "")
    if done == "retried":
        return f"Delivery {query.get('delivery', '')[:200]} will be sent again now."
    if done == "replayed":
        count = bounded_int(query.get("count"), 0, 0, 1_000_000)
        plural = "y" if count == 1 else "ies"
        return f"{count} failed deliver{plural} will be sent again now."
    return {
        "saved": "Webhook saved.",
        "enabled": "Webhook enabled: deliveries resume.",
        "disabled": "Webhook disabled: nothing is sent to it until it is enabled.",
        "deleted": "Webhook deleted: nothing more is sent to it.",
    }.get(done)
