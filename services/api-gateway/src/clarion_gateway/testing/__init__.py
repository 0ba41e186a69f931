"""Test support: in-memory fakes of every port (``fakes``) and the whole gateway HTTP
app on them (``harness``)."""

from .campaigns import (
    MemoryAudienceLocks,
    MemoryCampaignEvents,
    MemoryCampaigns,
    MemoryDirectory,
    MemoryRecipients,
)
from .fakes import (
    FakeConnection,
    FakeRequester,
    MemoryAnnouncer,
    MemoryApps,
    MemoryBatchRegistry,
    MemoryCategories,
    MemoryChannels,
    MemoryIdempotency,
    MemoryStore,
    MemoryTemplates,
    RecordingCommands,
)
from .harness import (
    ADMIN,
    AUTH,
    DEV_APP,
    DEV_KEY,
    Harness,
    all_sent,
    fake_adapters,
    gateway_harness,
    make_settings,
    peer_not_found,
)
from .imports import MemoryImports, MemoryImportStorage, MemoryUploadChunks, MemoryUploadKeys

__all__ = [
    "ADMIN",
    "AUTH",
    "DEV_APP",
    "DEV_KEY",
    "FakeConnection",
    "FakeRequester",
    "Harness",
    "MemoryAnnouncer",
    "MemoryApps",
    "MemoryAudienceLocks",
    "MemoryBatchRegistry",
    "MemoryCampaignEvents",
    "MemoryCampaigns",
    "MemoryCategories",
    "MemoryChannels",
    "MemoryDirectory",
    "MemoryIdempotency",
    "MemoryImportStorage",
    "MemoryImports",
    "MemoryRecipients",
    "MemoryStore",
    "MemoryTemplates",
    "MemoryUploadChunks",
    "MemoryUploadKeys",
    "RecordingCommands",
    "all_sent",
    "fake_adapters",
    "gateway_harness",
    "make_settings",
    "peer_not_found",
]
