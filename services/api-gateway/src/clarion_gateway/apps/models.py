"""HTTP models of the operator's app routes."""

from __future__ import annotations

from pydantic import Field

from clarion_shared.api import ApiModel


class AppCreate(ApiModel):
    """Every field given is stored and returned (the key once; it is stored hashed).
    Any other field is accepted and ignored."""

    name: str = Field(min_length=1, max_length=200)
    app_id: str | None = Field(default=None, description="Generated when absent.")
    api_key: str | None = Field(
        default=None, description="Generated (ck_...) when absent; stored hashed."
    )


class AppCreated(ApiModel):
    app_id: str
    name: str
    api_key: str = Field(description="Shown this once.")
