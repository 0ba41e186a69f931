"""Use cases of a campaign's audience: users added by id or by a user picker's filter,
and the ports they need (the recipients' repository, the audience lock, the user
directory's internal API).

One change of an audience runs at a time (``AudienceLocks``: an addition, later a CSV
import); the limit counts the audience already there. Recipients' ids are derived from
(campaign, uid), so a retried addition writes the same documents again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pydantic import JsonValue

from clarion_shared.errors import Invalid
from clarion_shared.ids import new_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..sends.domain import SendLimits, variable_problems
from ..slugs import check_uid
from .domain import (
    MAX_RECIPIENTS,
    AudienceBusy,
    Campaign,
    CampaignBusy,
    Recipient,
    RecipientRejected,
    TooManyRecipients,
    require,
)
from .service import CampaignRepository, change_campaign, get_campaign

log = get_logger(__name__)

# How long an audience change may hold the campaign's lock before it is taken as dead
# (its process crashed); a running change renews nothing, it is never that long.
AUDIENCE_LEASE_S = 600


class RecipientRepository(Resource, Protocol):
    async def uids(self, app_id: str, campaign_id: str) -> set[str]:
        """The uids of the audience."""
        ...

    async def add(self, recipients: Sequence[Recipient]) -> None:
        """Store them (ids derived from campaign and uid: a repeat overwrites)."""
        ...

    async def list(self, app_id: str, campaign_id: str) -> list[Recipient]: ...

    async def delete_all(self, app_id: str, campaign_id: str) -> None: ...


class AudienceLocks(Protocol):
    async def acquire(
        self, app_id: str, campaign_id: str, holder: str, now: int, lease_s: int
    ) -> bool:
        """Take the campaign's audience lock for ``holder``; False while another holds it
        (and its lease has not run out)."""
        ...

    async def release(self, app_id: str, campaign_id: str, holder: str) -> None: ...


class Directory(Protocol):
    """The user-directory's internal API (it owns users)."""

    async def existing(self, app_id: str, uids: Sequence[str]) -> set[str]:
        """Those of ``uids`` that are users of the app."""
        ...

    async def select(
        self, app_id: str, filters: Mapping[str, Any], limit: int
    ) -> tuple[list[str], bool]:
        """The uids matching the users list's ``filters`` (its order), at most
        ``limit``, and whether more match."""
        ...


@dataclass(frozen=True)
class AudienceChange:
    campaign: Campaign
    added: int
    duplicates: int
    rejected: list[RecipientRejected]


LOCK_TRIES = 20
LOCK_RETRY_S = 0.1


@asynccontextmanager
async def audience_lock(locks: AudienceLocks, campaign: Campaign, now: int) -> AsyncIterator[None]:
    holder = new_id("lck_")
    # An import records its outcome just before it lets the audience go: a client that
    # saw "completed" and sends at once finds the lock held for a few milliseconds more.
    for attempt in range(LOCK_TRIES):
        if await locks.acquire(
            campaign.app_id, campaign.campaign_id, holder, now, AUDIENCE_LEASE_S
        ):
            break
        if attempt == LOCK_TRIES - 1:
            raise AudienceBusy()
        await asyncio.sleep(LOCK_RETRY_S)
    try:
        yield
    finally:
        await locks.release(campaign.app_id, campaign.campaign_id, holder)


async def delete_campaign(
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    locks: AudienceLocks,
    app_id: str,
    campaign_id: str,
    now: int,
) -> Campaign:
    """Only a draft, and not while its audience changes (an addition or a CSV import
    would write recipients of a campaign that is gone); its audience goes with it."""
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    require(campaign, "delete", "draft")
    async with audience_lock(locks, campaign, now):
        if not await campaigns.delete(campaign):
            raise CampaignBusy()
        await recipients.delete_all(app_id, campaign_id)
    log.info("campaign.deleted", app_id=app_id, campaign_id=campaign_id)
    return campaign


def _checked_variables(
    uid: str, variables: Mapping[str, JsonValue] | None, limits: SendLimits
) -> dict[str, JsonValue]:
    values = dict(variables or {})
    problems = variable_problems(values, f"userVariables.{uid}", limits)
    if problems:
        raise Invalid(
            "Some variables are too large.",
            dev_message=f"{problems[0]['message']} ({problems[0]['field']})",
            details=problems[:20],
        )
    return values


async def add_users(  # long: the steps of an addition in order, each one call
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    locks: AudienceLocks,
    directory: Directory,
    app_id: str,
    campaign_id: str,
    user_ids: Sequence[str],
    user_variables: Mapping[str, Mapping[str, JsonValue]] | None,
    now: int,
    limits: SendLimits = SendLimits(),
) -> AudienceChange:
    """Add users by id: invalid and unknown uids are rejected one by one, repeats (in
    the list or already in the audience) counted as duplicates; over the limit nothing
    is added."""
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    require(campaign, "adding recipients", "draft")
    variables = {
        uid: _checked_variables(uid, values, limits)
        for uid, values in (user_variables or {}).items()
    }
    async with audience_lock(locks, campaign, now):
        existing = await recipients.uids(app_id, campaign_id)
        rejected: list[RecipientRejected] = []
        wanted: dict[str, None] = {}
        duplicates = 0
        for uid in user_ids:
            if not check_uid(uid):
                rejected.append(
                    RecipientRejected(
                        uid,
                        "ERR_VALIDATION",
                        "Not a valid uid (1-100 letters, digits, '_' or '-').",
                    )
                )
            elif uid in wanted or uid in existing:
                duplicates += 1
            else:
                wanted[uid] = None
        if len(existing) + len(wanted) > MAX_RECIPIENTS:
            raise TooManyRecipients(len(existing), len(wanted))
        found = await directory.existing(app_id, list(wanted)) if wanted else set()
        rejected += [
            RecipientRejected(uid, "ERR_USER_NOT_FOUND", "No such user.")
            for uid in wanted
            if uid not in found
        ]
        new = [uid for uid in wanted if uid in found]
        return await _store(
            campaigns, recipients, campaign, existing, new, variables, duplicates, rejected, now
        )


async def add_matching(
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    locks: AudienceLocks,
    directory: Directory,
    app_id: str,
    campaign_id: str,
    filters: Mapping[str, Any],
    now: int,
) -> AudienceChange:
    """The user picker: every user the users list's ``filters`` match now."""
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    require(campaign, "adding recipients", "draft")
    async with audience_lock(locks, campaign, now):
        existing = await recipients.uids(app_id, campaign_id)
        # Enough to tell "over the limit" even when every match is new.
        matched, more = await directory.select(app_id, filters, MAX_RECIPIENTS + 1)
        new = [uid for uid in matched if uid not in existing]
        if more or len(existing) + len(new) > MAX_RECIPIENTS:
            raise TooManyRecipients(len(existing), len(new) + (1 if more else 0))
        duplicates = len(matched) - len(new)
        return await _store(campaigns, recipients, campaign, existing, new, {}, duplicates, [], now)


async def _store(
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    campaign: Campaign,
    existing: set[str],
    new: Sequence[str],
    variables: Mapping[str, dict[str, JsonValue]],
    duplicates: int,
    rejected: list[RecipientRejected],
    now: int,
) -> AudienceChange:
    """Write the new recipients, then the audience's size (absolute: a change that
    crashed in between is counted right by the next one)."""
    start = len(existing)
    await recipients.add(
        [
            Recipient(
                app_id=campaign.app_id,
                campaign_id=campaign.campaign_id,
                uid=uid,
                seq=start + i,
                created_at=now,
                updated_at=now,
                variables=variables.get(uid, {}),
            )
            for i, uid in enumerate(new)
        ]
    )
    total = start + len(new)

    def sized(c: Campaign) -> Campaign:
        require(c, "adding recipients", "draft")
        return c if c.total_targets == total else replace(c, total_targets=total, updated_at=now)

    updated = await change_campaign(campaigns, campaign.app_id, campaign.campaign_id, sized)
    log.info(
        "campaign.recipients_added",
        app_id=campaign.app_id,
        campaign_id=campaign.campaign_id,
        added=len(new),
        duplicates=duplicates,
        rejected=len(rejected),
        total=total,
    )
    return AudienceChange(updated, len(new), duplicates, rejected)
