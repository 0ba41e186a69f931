"""The Webhooks pages: endpoints and their delivery attempts, "Retry"
(``/dashboard/apps/{appId}/webhooks...``).

Endpoints are read and changed through ``webhooks.service``'s use cases on the same
repository and outbox as ``/v3/webhooks`` (``outbox.after_write``, the deployment's
``webhook_rules``); deliveries, retries and replays are the webhook-emitter's, asked as
``webhooks.deliveries`` asks it (``EmitterDeliveries``). Owners change webhooks;
editors and viewers read. Every change is in the audit log; a signing secret is shown
in the answer that made it (create, rotate) and never again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.errors import DomainError
from clarion_shared.public.webhook_deliveries import DELIVERY_STATUSES

from ..paging import Page
from ..webhooks import outbox, service
from ..webhooks.domain import MAX_WEBHOOKS_PER_APP, WebhookChanges, WebhookNotFound
from ..webhooks.models import WebhookPublic
from .forms import texts
from .kit import PageKit
from .peer_reads import read_or_note
from .web import PREFIX, Member, PageProblem, not_allowed, redirect
from .webhooks import (
    TRIGGER_HINTS,
    DeliveriesFilter,
    DeliveriesProblem,
    EmitterDeliveries,
    WebhookForm,
    changed_fields,
    in_words,
    notice_of,
    replay_range,
)

# Every webhook of an app on one page (it has at most 25).
_EVERY_WEBHOOK = Page(1, MAX_WEBHOOKS_PER_APP)
# The confirmation pages: (title, what happens, button).
_CONFIRM = {
    "delete": (
        "Delete webhook",
        "Nothing more is sent to {url}, and this webhook's delivery log is no longer "
        "shown. This cannot be undone.",
        "Delete webhook",
    ),
    "rotate": (
        "Rotate signing secret",
        "A new signing secret is made and shown once. Deliveries to {url} are signed "
        "with the old one too for a while, so the receiver can switch without a gap.",
        "Rotate secret",
    ),
}


def _may_manage(member: Member) -> None:
    if not member.can_manage:
        raise not_allowed(
            member,
            "only owners of the app change webhooks or send deliveries again. Editors and "
            "viewers can read them.",
        )


def _no_webhook(webhook_id: str) -> PageProblem:
    # Another app's webhook looks like one that does not exist (never 403).
    return PageProblem(
        404, "No such webhook", f"This app has no webhook {webhook_id[:200]}, or it is not yours."
    )


def _list_url(member: Member) -> str:
    return f"{PREFIX}/apps/{quote(member.app.app_id, safe='')}/webhooks"


def _detail_url(member: Member, webhook_id: str) -> str:
    return f"{_list_url(member)}/{quote(webhook_id, safe='')}"


def router(kit: PageKit) -> APIRouter:  # long: one closure per page
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}/webhooks", include_in_schema=False)
    dashboard, webhooks = kit.dashboard, kit.adapters.webhooks
    propagate = outbox.after_write(webhooks, kit.adapters.webhook_configs)
    rules = kit.settings.webhook_rules()
    deliveries = EmitterDeliveries(kit.adapters.peers)
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    member_of = Depends(dashboard.member)

    async def the_webhook(member: Member, webhook_id: str) -> WebhookPublic:
        """The app's webhook, as the API shows it: never its secret or password."""
        try:
            found = await service.get_webhook(webhooks, member.app.app_id, webhook_id)
        except WebhookNotFound as exc:
            raise _no_webhook(webhook_id) from exc
        return WebhookPublic.of(found)

    async def audit(member: Member, action: str, target: str, detail: dict[str, Any]) -> None:
        await kit.auditor.record(member.operator.email, member.app.app_id, action, target, detail)

    async def detail(
        request: Request,
        member: Member,
        webhook: WebhookPublic,
        query: Mapping[str, str],
        *,
        secret: str | None = None,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        wanted = DeliveriesFilter.parse(query)
        problems: list[str] = []  # the listing's, said in its section
        page = await read_or_note(deliveries.page(member.app.app_id, webhook.id, wanted), problems)
        context = {
            "webhook": webhook,
            "secret": secret,
            "notice": notice_of(query),
            "errors": errors or [],  # what an action was refused, said at the top
            "problems": problems,
            "filter": wanted,
            "page": page,
            "statuses": DELIVERY_STATUSES,
        }
        return dashboard.render(request, "webhook_detail.html", context, status=status)

    def form_page(
        request: Request,
        form: WebhookForm,
        webhook: WebhookPublic | None = None,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        context = {
            "form": form.without_password(),
            "webhook": webhook,
            "errors": errors or [],
            "hints": TRIGGER_HINTS,
            "allow_private": rules.allow_private,
        }
        return dashboard.render(request, "webhook_form.html", context, status=status)

    async def posted_form(request: Request) -> WebhookForm:
        form = await request.form()
        triggers = [t for t in form.getlist("triggers") if isinstance(t, str)]
        return WebhookForm.posted(texts(form), triggers)

    @routes.get("")
    async def list_webhooks(request: Request, member: Member = member_of) -> Response:
        found = await service.list_webhooks(webhooks, member.app.app_id, _EVERY_WEBHOOK)
        context = {
            "webhooks": [WebhookPublic.of(w) for w in found.items],
            "notice": notice_of(texts(request.query_params)),
        }
        return dashboard.render(request, "webhooks.html", context)

    @routes.get("/new")
    async def new_form(request: Request, member: Member = member_of) -> Response:
        _may_manage(member)
        return form_page(request, WebhookForm())

    @routes.post("")
    async def create(request: Request, member: Member = member_of) -> Response:
        _may_manage(member)
        form = await posted_form(request)
        if problems := form.problems():
            return form_page(request, form, errors=problems, status=400)
        try:
            made = await service.create_webhook(
                webhooks, propagate, member.app.app_id, form.to_new(), service.now_ms(), rules
            )
        except DomainError as exc:
            return form_page(request, form, errors=in_words(exc), status=400)
        webhook = WebhookPublic.of(made)
        await audit(
            member,
            "webhook.create",
            webhook.id,
            {
                "name": webhook.name,
                "webhookURL": webhook.webhook_url,
                "triggers": webhook.triggers,
                "enabled": webhook.enabled,
            },
        )
        # The one answer that shows the secret: a page rendered here, not a redirect.
        return await detail(request, member, webhook, {}, secret=made.signing_secret, status=201)

    @routes.get("/{webhook_id}")
    async def webhook_detail(
        request: Request, webhook_id: str, member: Member = member_of
    ) -> Response:
        webhook = await the_webhook(member, webhook_id)
        return await detail(request, member, webhook, texts(request.query_params))

    @routes.get("/{webhook_id}/edit")
    async def edit_form(request: Request, webhook_id: str, member: Member = member_of) -> Response:
        _may_manage(member)
        webhook = await the_webhook(member, webhook_id)
        return form_page(request, WebhookForm.of(webhook), webhook)

    @routes.post("/{webhook_id}/edit")
    async def update(request: Request, webhook_id: str, member: Member = member_of) -> Response:
        _may_manage(member)
        before = await the_webhook(member, webhook_id)
        form = await posted_form(request)
        if problems := form.problems():
            return form_page(request, form, before, problems, status=400)
        after = await change(member, before, form.to_changes())
        if isinstance(after, list):
            return form_page(request, form, before, after, status=400)
        return redirect(f"{_detail_url(member, webhook_id)}?done=saved", request)

    async def change(
        member: Member, before: WebhookPublic, changes: WebhookChanges
    ) -> WebhookPublic | list[str]:
        """The update's use case, audited; what it refused, in words."""
        try:
            updated = await service.update_webhook(
                webhooks, propagate, member.app.app_id, before.id, changes, service.now_ms(), rules
            )
        except WebhookNotFound as exc:
            raise _no_webhook(before.id) from exc
        except DomainError as exc:
            return in_words(exc)
        after = WebhookPublic.of(updated)
        detail_: dict[str, Any] = {"changed": changed_fields(before, after)}
        if changes.rotate_secret:
            detail_["rotated"] = True
        detail_["enabled"] = after.enabled
        await audit(member, "webhook.update", before.id, detail_)
        return after

    @routes.post("/{webhook_id}/state")
    async def set_state(request: Request, webhook_id: str, member: Member = member_of) -> Response:
        """ "Enable" (a webhook disabled by hand or by failures) or "Disable"."""
        _may_manage(member)
        before = await the_webhook(member, webhook_id)
        enabled = texts(await request.form()).get("enabled") == "true"
        after = await change(member, before, WebhookChanges(enabled=enabled))
        if isinstance(after, list):
            return await detail(request, member, before, {}, errors=after, status=409)
        done = "enabled" if enabled else "disabled"
        return redirect(f"{_detail_url(member, webhook_id)}?done={done}", request)

    @routes.get("/{webhook_id}/{action}")
    async def confirm_page(
        request: Request, webhook_id: str, action: str, member: Member = member_of
    ) -> Response:
        """The confirmation step of "Delete webhook" and "Rotate secret"."""
        if action not in _CONFIRM:
            raise PageProblem(404, "Not found", "There is no such page.")
        _may_manage(member)
        webhook = await the_webhook(member, webhook_id)
        title, message, button = _CONFIRM[action]
        context = {
            "webhook": webhook,
            "action": action,
            "title": title,
            "message": message.format(url=webhook.webhook_url),
            "button": button,
        }
        return dashboard.render(request, "webhook_confirm.html", context)

    @routes.post("/{webhook_id}/rotate")
    async def rotate(request: Request, webhook_id: str, member: Member = member_of) -> Response:
        _may_manage(member)
        before = await the_webhook(member, webhook_id)
        try:
            rotated = await service.update_webhook(
                webhooks,
                propagate,
                member.app.app_id,
                webhook_id,
                WebhookChanges(rotate_secret=True),
                service.now_ms(),
                rules,
            )
        except WebhookNotFound as exc:
            raise _no_webhook(webhook_id) from exc
        except DomainError as exc:
            return await detail(request, member, before, {}, errors=in_words(exc), status=409)
        await audit(member, "webhook.update", webhook_id, {"changed": [], "rotated": True})
        webhook = WebhookPublic.of(rotated)
        return await detail(request, member, webhook, {}, secret=rotated.signing_secret)

    @routes.post("/{webhook_id}/delete")
    async def delete(request: Request, webhook_id: str, member: Member = member_of) -> Response:
        _may_manage(member)
        webhook = await the_webhook(member, webhook_id)
        try:
            await service.delete_webhook(
                webhooks, propagate, member.app.app_id, webhook_id, service.now_ms()
            )
        except WebhookNotFound as exc:
            raise _no_webhook(webhook_id) from exc
        except DomainError as exc:
            return await detail(request, member, webhook, {}, errors=in_words(exc), status=409)
        detail_ = {"name": webhook.name, "webhookURL": webhook.webhook_url}
        await audit(member, "webhook.delete", webhook_id, detail_)
        return redirect(f"{_list_url(member)}?done=deleted", request)

    @routes.post("/{webhook_id}/deliveries/{delivery_id}/retry")
    async def retry(
        request: Request, webhook_id: str, delivery_id: str, member: Member = member_of
    ) -> Response:
        """ "Retry": the delivery sent again now, as ``POST .../retry`` does; back to the
        deliveries as they were filtered."""
        _may_manage(member)
        webhook = await the_webhook(member, webhook_id)
        view = DeliveriesFilter.parse(texts(await request.form()))
        try:
            again = await deliveries.retry(member.app.app_id, webhook_id, delivery_id)
        except DeliveriesProblem as exc:
            query = {"status": view.status, "page": str(view.page), "perPage": str(view.per_page)}
            return await detail(
                request, member, webhook, query, errors=[exc.message], status=exc.status
            )
        await audit(
            member, "webhook.retry", webhook_id, {"deliveryId": again.id, "trigger": again.trigger}
        )
        done = urlencode({"done": "retried", "delivery": again.id})
        return redirect(f"{_detail_url(member, webhook_id)}?{view.page_query()}&{done}", request)

    @routes.post("/{webhook_id}/replay")
    async def replay(request: Request, webhook_id: str, member: Member = member_of) -> Response:
        """ "Replay": every failed delivery of events between two days sent again."""
        _may_manage(member)
        webhook = await the_webhook(member, webhook_id)
        posted = texts(await request.form())
        bounds = replay_range(posted.get("since", "").strip(), posted.get("until", "").strip())
        if isinstance(bounds, list):
            return await detail(request, member, webhook, {}, errors=bounds, status=400)
        try:
            accepted = await deliveries.replay(member.app.app_id, webhook_id, *bounds)
        except DeliveriesProblem as exc:
            return await detail(
                request, member, webhook, {}, errors=[exc.message], status=exc.status
            )
        await audit(
            member,
            "webhook.replay",
            webhook_id,
            {"since": accepted.since, "until": accepted.until, "count": accepted.count},
        )
        done = urlencode({"done": "replayed", "count": accepted.count})
        return redirect(f"{_detail_url(member, webhook_id)}?{done}", request)

    return routes
