"""Use cases that try again: generated ids that collide, saves lost to another request."""

from __future__ import annotations

import pytest

from clarion_gateway.channels import service as channels
from clarion_gateway.channels.domain import Channel, ChannelIdTaken, NewChannel
from clarion_gateway.channels.mongo import stored_channel_type
from clarion_gateway.templates import service as templates
from clarion_gateway.templates.domain import (
    ChannelInput,
    Template,
    TemplateBusy,
    TemplateDraft,
    TemplateIdTaken,
)
from clarion_gateway.testing import MemoryChannels, MemoryStore, MemoryTemplates, RecordingCommands
from clarion_shared.errors import DomainError


class TakenChannels(MemoryChannels):
    """Every channel id is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.tried: list[str] = []

    async def insert(self, channel: Channel) -> bool:
        self.tried.append(channel.channel_id)
        return False


class TakenTemplates(MemoryTemplates):
    def __init__(self) -> None:
        super().__init__()
        self.tried: list[str] = []

    async def insert(self, template: Template) -> bool:
        self.tried.append(template.template_id)
        return False


class LosingTemplates(MemoryTemplates):
    """Another request saves first, every time."""

    def __init__(self) -> None:
        super().__init__()
        self.saves = 0

    async def replace(self, template: Template) -> bool:
        self.saves += 1
        return False


async def test_a_generated_channel_id_is_tried_with_suffixes_then_refused() -> None:
    store = MemoryStore()
    taken = TakenChannels()
    with pytest.raises(ChannelIdTaken):
        await channels.create_channel(
            taken,
            store.apps,
            RecordingCommands(),
            "app",
            NewChannel("Push", "push"),
            now=1,
            allow_private=False,
        )
    assert taken.tried[0] == "push"
    assert len(taken.tried) == 6
    assert all(t.startswith("push-") for t in taken.tried[1:])
    # The push slot is not left held by a channel that does not exist.
    assert store.apps.slots == {}


async def test_a_chosen_channel_id_is_tried_once() -> None:
    taken = TakenChannels()
    with pytest.raises(ChannelIdTaken):
        await channels.create_channel(
            taken,
            MemoryStore().apps,
            RecordingCommands(),
            "app",
            NewChannel("Feed", "in_app", channel_id="feed"),
            now=1,
            allow_private=False,
        )
    assert taken.tried == ["feed"]


async def test_a_generated_template_id_is_tried_with_suffixes_then_refused() -> None:
    taken = TakenTemplates()
    draft = TemplateDraft(name="Order update", channels=[ChannelInput("sms")])
    with pytest.raises(TemplateIdTaken):
        await templates.create_template(taken, "app", draft, now=1)
    assert taken.tried[0] == "order_update"
    assert len(taken.tried) == 6
    assert all(t.startswith("order_update_") for t in taken.tried[1:])


async def test_a_change_lost_to_other_requests_every_time_is_a_conflict() -> None:
    losing = LosingTemplates()
    draft = TemplateDraft(name="T", channels=[ChannelInput("sms")], template_id="t")
    await templates.create_template(losing, "app", draft, now=1)
    with pytest.raises(TemplateBusy) as err:
        await templates.archive_template(losing, "app", "t", now=2)
    assert err.value.message == "The template is being changed by another request; try again."
    assert losing.saves == templates.SAVE_ATTEMPTS


def test_stored_data_is_decoded_without_domain_errors() -> None:
    assert stored_channel_type("email") == "email"
    with pytest.raises(ValueError, match="pigeon") as err:
        stored_channel_type("pigeon")
    assert not isinstance(err.value, DomainError)
