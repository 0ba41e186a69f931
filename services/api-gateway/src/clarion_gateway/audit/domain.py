"""Audit entries: who did what to which app, when. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from clarion_shared.contracts.base import JsonObject

# The actions the dashboard records (a new one is a new string here and in its caller):
# ``send``; ``campaign.create|audience|send|schedule|cancel`` (``audience``: recipients
# added, by a CSV import, picked users or a filter); ``template.create|update|approve``;
# ``webhook.create|update|delete|retry|replay``; ``operator.sign_in``, ``operator.sign_out``.
ACTIONS = frozenset(
    {
        "send",
        "campaign.create",
        "campaign.audience",
        "campaign.send",
        "campaign.schedule",
        "campaign.cancel",
        "template.create",
        "template.update",
        "template.approve",
        "webhook.create",
        "webhook.update",
        "webhook.delete",
        "webhook.retry",
        "webhook.replay",
        "operator.sign_in",
        "operator.sign_out",
    }
)
# An entry's detail stays small: what identifies the change, never a whole body.
MAX_DETAIL_BYTES = 4 * 1024


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    app_id: str | None  # None for what concerns no app (signing in)
    actor: str  # the operator's email
    action: str
    target: str | None
    at: int
    detail: JsonObject = field(default_factory=dict)
