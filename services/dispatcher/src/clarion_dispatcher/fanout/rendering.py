"""Rendering one receiver's content, each channel's, with the failures that stay its own.

A receiver whose content cannot be rendered, or renders too large, fails with a code
(``render_all``); the chunk and the other receivers go on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import JsonValue

from clarion_shared.contracts.base import ErrorInfo, JsonObject
from clarion_shared.contracts.sends import TemplateChannel
from clarion_shared.templating import Renderer

ERR_RENDER_FAILED = "ERR_RENDER_FAILED"
ERR_CONTENT_TOO_LARGE = "ERR_CONTENT_TOO_LARGE"
# A receiver's rendered content per channel, at most: well under Kafka's 1 MB record
# (a job carries it) and MongoDB's 16 MB document. Templates and variables have their
# own limits at the gateway, but a token repeated in a large template multiplies them.
MAX_RENDERED_BYTES = 256 * 1024


class RenderContext(Protocol):
    """What rendering needs of a send (``domain.SendContext`` has it)."""

    @property
    def channels(self) -> Sequence[TemplateChannel]: ...

    @property
    def template_bytes(self) -> Sequence[int]: ...

    @property
    def renderer(self) -> Renderer: ...


def template_size(channel: TemplateChannel) -> int:
    """A channel's template content, serialized: the base of ``render_all``'s bound."""
    return _size(channel.content)


def render_content(
    renderer: Renderer, channel: TemplateChannel, values: Mapping[str, JsonValue]
) -> JsonObject:
    """The channel's content for one receiver; values are HTML-escaped in email ``html``."""
    escape_in = "html" if channel.channel_type == "email" else ""
    rendered = renderer.render(channel.content, values, escape_html_in=escape_in)
    # Rendering keeps the shape of its input: an object stays an object.
    return rendered if isinstance(rendered, dict) else {}


def render_all(
    send: RenderContext, values: Mapping[str, JsonValue]
) -> tuple[list[JsonObject], ErrorInfo | None]:
    """Every channel's content for one receiver, or why it cannot be rendered.

    One receiver's failure is that receiver's alone: whatever rendering raises, or a
    content over ``MAX_RENDERED_BYTES``, fails it with a code, never the chunk.
    """
    contents: list[JsonObject] = []
    for channel, template_bytes in zip(send.channels, send.template_bytes, strict=True):
        try:
            content = render_content(send.renderer, channel, values)
        except Exception as exc:  # whatever rendering raises fails this receiver only
            return [], ErrorInfo(code=ERR_RENDER_FAILED, message=f"Rendering failed: {exc!r}"[:300])
        if _may_exceed(template_bytes, values) and _size(content) > MAX_RENDERED_BYTES:
            return [], ErrorInfo(
                code=ERR_CONTENT_TOO_LARGE,
                message=f"The rendered {channel.channel_type} content is over "
                f"{MAX_RENDERED_BYTES} bytes.",
            )
        contents.append(content)
    return contents, None


def _may_exceed(template_bytes: int, values: Mapping[str, JsonValue]) -> bool:
    """A cheap bound first: only a template with large values can render too large."""
    largest = max((len(str(value)) for value in values.values()), default=0)
    return template_bytes * max(1, largest) > MAX_RENDERED_BYTES


def _size(content: JsonObject) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode())
