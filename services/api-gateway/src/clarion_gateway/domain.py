"""Pure rules of the gateway: apps and keys, channels, templates and their versions,
receivers of a direct send. No I/O here; every function is trivially unit-tested.

Rule violations raise :class:`clarion_shared.errors.ApiError` with the API code the
client sees (``ERR_VALIDATION``, ``ERR_CONFLICT``, ...), so the HTTP layer has nothing
to translate.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from pydantic import JsonValue

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import CHANNEL_TYPES, ChannelType
from clarion_shared.errors import ApiError
from clarion_shared.templating import KEY_RE, tokens_in

T = TypeVar("T")

UID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,100}$")
SLUG_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$")
APP_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$")

VersionStatus = Literal["draft", "approved"]
TemplateStatus = Literal["draft", "approved", "archived"]
VariableType = Literal["string", "image", "action"]


def invalid(message: str, details: Any = None, dev_message: str | None = None) -> ApiError:
    return ApiError(400, "ERR_VALIDATION", message, dev_message=dev_message, details=details)


def conflict(message: str, details: Any = None) -> ApiError:
    return ApiError(409, "ERR_CONFLICT", message, details=details)


def not_found(what: str, code: str = "ERR_NOT_FOUND", status: int = 404) -> ApiError:
    return ApiError(status, code, f"{what} not found.")


# ---------------------------------------------------------------- ids and slugs


def slugify(name: str, sep: str = "-", max_len: int = 64) -> str:
    """A URL-safe id from a display name: ASCII letters and digits joined by ``sep``.

    Returns "" when nothing usable is left (e.g. a name in a non-Latin script); the
    caller then makes one up.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", sep, ascii_name).strip(sep).lower()
    return slug[:max_len].strip(sep)


def check_slug(value: str, what: str) -> str:
    if not SLUG_RE.match(value):
        raise invalid(
            f"{what} may hold letters, digits, '_' and '-' (1-100, starting with a "
            "letter or digit).",
            details=[{"field": what, "message": "invalid slug"}],
        )
    return value


def check_uid(value: str) -> bool:
    return bool(UID_RE.match(value))


# ---------------------------------------------------------------- apps and keys


@dataclass(frozen=True)
class App:
    app_id: str
    name: str
    created_at: int


def hash_key(api_key: str) -> str:
    """Keys are stored as their SHA-256: a database dump reveals no usable key.

    A fast hash is right here: keys are 192-bit random strings, not passwords.
    """
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return f"ck_{secrets.token_hex(24)}"


def new_app_id() -> str:
    return f"app{secrets.token_hex(6)}"


def check_app_id(app_id: str) -> str:
    if not APP_ID_RE.match(app_id):
        raise invalid(
            "appId may hold letters, digits, '_' and '-' (1-64, starting with a letter or digit).",
            details=[{"field": "appId", "message": "invalid app id"}],
        )
    return app_id


def check_api_key(api_key: str) -> str:
    if not 8 <= len(api_key) <= 200 or any(c.isspace() for c in api_key):
        raise invalid(
            "apiKey must be 8-200 characters without spaces.",
            details=[{"field": "apiKey", "message": "invalid api key"}],
        )
    return api_key


# ---------------------------------------------------------------- channels

# Channel types CometChat knows but Clarion does not deliver to: accepted, refused
# with 403 (CometChat's "channel type restricted"), reported by /channels/availability.
RESTRICTED_CHANNEL_TYPES: tuple[str, ...] = ("whatsapp",)
# Per app, at most this many channels of a type (None: no limit).
CHANNEL_TYPE_LIMITS: Mapping[str, int] = {"push": 1}


@dataclass(frozen=True)
class Channel:
    app_id: str
    channel_id: str
    name: str
    type: ChannelType
    enabled: bool
    metadata: JsonObject
    created_at: int
    updated_at: int


def channel_type_of(value: str) -> ChannelType:
    for channel_type in CHANNEL_TYPES:
        if value == channel_type:
            return channel_type
    if value in RESTRICTED_CHANNEL_TYPES:
        raise ApiError(403, "ERR_FORBIDDEN", f"Channel type {value} is not available in Clarion.")
    raise invalid(
        f"Unknown channel type {value!r}.",
        details=[{"field": "type", "message": f"one of {', '.join(CHANNEL_TYPES)}"}],
    )


_SENSITIVE_MARKERS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "serverkey",
    "signingkey",
    "credential",
    "authorization",
)
_SENSITIVE_EXACT = frozenset({"auth", "pass", "pwd", "key"})
MASK = "****"


def is_sensitive(key: str) -> bool:
    """Whether a metadata key holds a credential (``password``, ``authToken``, ...)."""
    norm = re.sub(r"[^a-z]", "", key.lower())
    return norm in _SENSITIVE_EXACT or any(marker in norm for marker in _SENSITIVE_MARKERS)


def mask_value(value: str) -> str:
    """``****abcd``: the last four characters, only for values long enough that four
    characters give nothing away."""
    return f"{MASK}{value[-4:]}" if len(value) >= 12 else MASK


def _mask_all(value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return mask_value(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return MASK
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    return [_mask_all(v) for v in value]


def mask_metadata(metadata: JsonObject) -> JsonObject:
    """A copy of channel metadata safe to return: credentials masked at any depth."""
    out: JsonObject = {}
    for key, value in metadata.items():
        if is_sensitive(key):
            out[key] = _mask_all(value)
        elif isinstance(value, dict):
            out[key] = mask_metadata(value)
        elif isinstance(value, list):
            out[key] = [mask_metadata(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def keep_masked_secrets(new: JsonObject, old: JsonObject) -> JsonObject:
    """Metadata for an update: a credential sent back masked keeps its stored value.

    Clients read a channel (masked), change one field and send it all back; that must
    not overwrite the real password with ``****``.
    """
    out: JsonObject = {}
    for key, value in new.items():
        previous = old.get(key)
        if (
            is_sensitive(key)
            and isinstance(value, str)
            and value.startswith(MASK)
            and previous is not None
        ):
            out[key] = previous
        elif isinstance(value, dict) and isinstance(previous, dict):
            out[key] = keep_masked_secrets(value, previous)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class VariableDef:
    key: str
    type: VariableType = "string"
    name: str | None = None
    required: bool = False
    default_value: str | None = None


@dataclass(frozen=True)
class TemplateChannel:
    channel_type: ChannelType
    channel_id: str | None
    content: JsonObject


@dataclass(frozen=True)
class TemplateVersion:
    version: int
    status: VersionStatus
    channels: tuple[TemplateChannel, ...]
    variable_schema: tuple[VariableDef, ...]
    created_at: int
    approved_at: int | None = None

    @property
    def channel_types(self) -> list[ChannelType]:
        return [c.channel_type for c in self.channels]


@dataclass(frozen=True)
class Template:
    """A template and its versions (oldest first; never empty).

    ``status`` is ``archived`` once archived, otherwise the newest version's status;
    ``approved_version`` is the newest approved version, the one direct sends use.
    """

    app_id: str
    template_id: str
    name: str
    versions: tuple[TemplateVersion, ...]
    created_at: int
    updated_at: int
    template_category: str | None = None
    label: str | None = None
    alternative_text: str | None = None
    tags: tuple[str, ...] = ()
    archived: bool = False
    revision: int = 0  # optimistic concurrency: bumped by every save

    @property
    def newest(self) -> TemplateVersion:
        return self.versions[-1]

    @property
    def status(self) -> TemplateStatus:
        return "archived" if self.archived else self.newest.status

    @property
    def approved(self) -> TemplateVersion | None:
        for version in reversed(self.versions):
            if version.status == "approved":
                return version
        return None

    @property
    def approved_version(self) -> int | None:
        approved = self.approved
        return approved.version if approved else None


@dataclass(frozen=True)
class VariableInput:
    """A variable as a client sent it, before validation (defaults of any JSON type)."""

    key: str
    type: str = "string"
    name: str | None = None
    required: bool = False
    default_value: JsonValue = None


@dataclass(frozen=True)
class ChannelInput:
    channel_type: ChannelType
    channel_id: str | None = None
    content: JsonObject | None = None


# Per channel type, groups of content fields: each group needs one non-empty string.
CONTENT_REQUIREMENTS: Mapping[ChannelType, tuple[tuple[str, ...], ...]] = {
    "in_app": (("title",), ("body",)),
    "push": (("title",), ("body",)),
    "email": (("subject",), ("text", "html")),
    "sms": (("text",),),
    "custom": (),
}


def default_content(
    channel_type: ChannelType, name: str, alternative_text: str | None
) -> JsonObject:
    """Content for a channel sent without any (CometChat: "defaults applied if omitted"):
    the template's name as title or subject, its alternative text (or name) as body."""
    body = alternative_text or name
    if channel_type in ("in_app", "push"):
        return {"title": name, "body": body}
    if channel_type == "email":
        return {"subject": name, "text": body}
    if channel_type == "sms":
        return {"text": body}
    return {}


def content_problems(channel_type: ChannelType, content: JsonObject) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    for group in CONTENT_REQUIREMENTS[channel_type]:
        if not any(isinstance(content.get(k), str) and content.get(k) for k in group):
            wanted = " or ".join(group)
            problems.append(
                {
                    "channelType": channel_type,
                    "field": group[0] if len(group) == 1 else "/".join(group),
                    "message": f"{channel_type} content needs a non-empty {wanted}",
                }
            )
    return problems


def validate_schema(items: Sequence[VariableInput]) -> tuple[VariableDef, ...]:
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    out: list[VariableDef] = []
    for index, item in enumerate(items):
        where = f"variableSchema.{index}"
        if not KEY_RE.match(item.key):
            problems.append({"field": where, "message": f"invalid variable key {item.key!r}"})
            continue
        if item.key in seen:
            problems.append({"field": where, "message": f"duplicate variable key {item.key!r}"})
            continue
        seen.add(item.key)
        if item.type not in ("string", "image", "action"):
            problems.append(
                {"field": where, "message": f"type of {item.key!r} must be string, image or action"}
            )
            continue
        default: str | None = None
        if item.default_value is not None:
            if item.type != "string":
                problems.append(
                    {
                        "field": where,
                        "message": f"only string variables take a default ({item.key!r})",
                    }
                )
                continue
            if isinstance(item.default_value, dict | list):
                problems.append(
                    {"field": where, "message": f"default of {item.key!r} must be a string"}
                )
                continue
            default = (
                str(item.default_value).lower()
                if isinstance(item.default_value, bool)
                else str(item.default_value)
            )
        variable_type: VariableType = (
            "image" if item.type == "image" else "action" if item.type == "action" else "string"
        )
        out.append(VariableDef(item.key, variable_type, item.name, item.required, default))
    if problems:
        raise invalid("The variable schema is not valid.", details=problems)
    return tuple(out)


def validate_channels(
    items: Sequence[ChannelInput], name: str, alternative_text: str | None
) -> tuple[TemplateChannel, ...]:
    if not items:
        raise invalid(
            "A template needs at least one channel.",
            details=[{"field": "channels", "message": "at least one channel"}],
        )
    seen: set[str] = set()
    duplicates: list[str] = []
    problems: list[dict[str, str]] = []
    out: list[TemplateChannel] = []
    for item in items:
        if item.channel_type in seen:
            duplicates.append(item.channel_type)
            continue
        seen.add(item.channel_type)
        if item.channel_id is not None:
            check_slug(item.channel_id, "channelId")
        content = (
            item.content
            if item.content is not None
            else default_content(item.channel_type, name, alternative_text)
        )
        problems.extend(content_problems(item.channel_type, content))
        out.append(TemplateChannel(item.channel_type, item.channel_id, content))
    if duplicates:
        raise conflict(
            f"Duplicate channel type: {', '.join(sorted(set(duplicates)))}.",
            details={"channelTypes": sorted(set(duplicates))},
        )
    if problems:
        raise invalid("The channel content is not valid.", details=problems)
    return tuple(out)


def check_tokens(channels: Iterable[TemplateChannel], schema: Iterable[VariableDef]) -> None:
    """Every ``{{key}}`` in the content must be a variable of the schema."""
    known = {v.key for v in schema}
    unknown: set[str] = set()
    for channel in channels:
        unknown |= tokens_in(channel.content) - known
    if unknown:
        keys = sorted(unknown)
        raise invalid(
            f"Unknown variables in the content: {', '.join(keys)}.",
            details={"unknownVariables": keys},
            dev_message=f"Add {', '.join(keys)} to variableSchema or remove the tokens.",
        )


def new_version(
    number: int,
    channels: tuple[TemplateChannel, ...],
    schema: tuple[VariableDef, ...],
    now: int,
    status: VersionStatus = "draft",
) -> TemplateVersion:
    check_tokens(channels, schema)
    return TemplateVersion(
        version=number,
        status=status,
        channels=channels,
        variable_schema=schema,
        created_at=now,
        approved_at=now if status == "approved" else None,
    )


def with_channel_content(
    channels: tuple[TemplateChannel, ...], update: TemplateChannel
) -> tuple[TemplateChannel, ...]:
    """The channels with one channel's content (and channel id) replaced or added."""
    out: list[TemplateChannel] = []
    replaced = False
    for channel in channels:
        if channel.channel_type == update.channel_type:
            out.append(
                TemplateChannel(
                    update.channel_type,
                    update.channel_id if update.channel_id is not None else channel.channel_id,
                    update.content,
                )
            )
            replaced = True
        else:
            out.append(channel)
    if not replaced:
        out.append(update)
    return tuple(out)


def edit_content(
    template: Template,
    now: int,
    channels: tuple[TemplateChannel, ...] | None = None,
    schema: tuple[VariableDef, ...] | None = None,
) -> Template:
    """Change channels and/or the variable schema.

    A draft newest version is edited in place; an approved one is left alone (sends and
    campaigns use it) and the change becomes the next version, a draft.
    """
    newest = template.newest
    version = new_version(
        newest.version if newest.status == "draft" else newest.version + 1,
        channels if channels is not None else newest.channels,
        schema if schema is not None else newest.variable_schema,
        now if newest.status != "draft" else newest.created_at,
    )
    versions = (
        (*template.versions[:-1], version)
        if newest.status == "draft"
        else (*template.versions, version)
    )
    return replace(template, versions=versions, updated_at=now)


def add_version(
    template: Template,
    now: int,
    channels: tuple[TemplateChannel, ...] | None = None,
    schema: tuple[VariableDef, ...] | None = None,
) -> Template:
    """The next version by hand: a draft copy of the newest, with any given changes."""
    newest = template.newest
    version = new_version(
        newest.version + 1,
        channels if channels is not None else newest.channels,
        schema if schema is not None else newest.variable_schema,
        now,
    )
    return replace(template, versions=(*template.versions, version), updated_at=now)


def set_status(template: Template, status: TemplateStatus, now: int) -> Template:
    """``approved`` approves the newest version (and restores an archived template);
    ``archived`` archives; ``draft`` restores an archived template. An approved
    version never returns to draft: edit the template to get a new draft version."""
    if status == "archived":
        return replace(template, archived=True, updated_at=now)
    if status == "approved":
        newest = template.newest
        if newest.status != "approved":
            newest = replace(newest, status="approved", approved_at=now)
        return replace(
            template,
            archived=False,
            versions=(*template.versions[:-1], newest),
            updated_at=now,
        )
    if template.newest.status == "approved" and not template.archived:
        raise conflict(
            "An approved version cannot return to draft; edit the template to create "
            "a new draft version."
        )
    return replace(template, archived=False, updated_at=now)


# ---------------------------------------------------------------- direct sends

SendModeName = Literal["realtime", "batch"]


@dataclass(frozen=True)
class SendLimits:
    realtime_max: int = 10
    batch_max: int = 10_000
    chunk_size: int = 500


def normalize_receivers(raw: Sequence[str], limits: SendLimits) -> tuple[str, ...]:
    """Receivers de-duplicated in order; every bad uid reported with its index."""
    bad = [{"index": i, "uid": uid} for i, uid in enumerate(raw) if not check_uid(uid)]
    if bad:
        raise invalid(
            "Some receivers are not valid uids.",
            details={"invalidReceivers": bad[:100], "count": len(bad)},
            dev_message="A uid is 1-100 letters, digits, '_' or '-'.",
        )
    unique = tuple(dict.fromkeys(raw))
    if not unique:
        raise invalid(
            "At least one receiver is needed.",
            details=[{"field": "receivers", "message": "empty"}],
        )
    if len(unique) > limits.batch_max:
        raise ApiError(
            400,
            "ERR_TARGET_LIMIT_EXCEEDED",
            f"A direct send takes at most {limits.batch_max} distinct receivers; "
            "use a campaign for more.",
            details={"receivers": len(unique), "limit": limits.batch_max},
        )
    return unique


def send_mode(receivers: int, limits: SendLimits) -> SendModeName:
    return "realtime" if receivers <= limits.realtime_max else "batch"


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def used_channels(version: TemplateVersion, wanted: Sequence[str] | None) -> list[TemplateChannel]:
    """The template channels a send uses: all, or those ``wanted`` (types), in template
    order."""
    if wanted is None:
        return list(version.channels)
    available = {c.channel_type for c in version.channels}
    unknown = [w for w in wanted if w not in available]
    if unknown or not wanted:
        raise invalid(
            "channels must name some of the template's channel types.",
            details={"unknownChannels": unknown, "templateChannels": sorted(available)},
        )
    chosen = set(wanted)
    return [c for c in version.channels if c.channel_type in chosen]


def pick_channel(
    template_channel: TemplateChannel, candidates: Sequence[Channel]
) -> Channel | None:
    """The channel instance a template channel sends through.

    The template's ``channelId`` when it names one (``candidates`` holds just that
    channel, if it exists); otherwise the app's oldest enabled channel of the type.
    """
    usable = [
        c
        for c in candidates
        if c.type == template_channel.channel_type
        and c.enabled
        and (template_channel.channel_id is None or c.channel_id == template_channel.channel_id)
    ]
    usable.sort(key=lambda c: (c.created_at, c.channel_id))
    return usable[0] if usable else None


# ---------------------------------------------------------------- lists


@dataclass(frozen=True)
class Page:
    """One page of a list: the API's ``page`` / ``perPage`` pagination."""

    number: int
    per_page: int

    def slice(self, items: Sequence[T]) -> list[T]:
        start = (self.number - 1) * self.per_page
        return list(items[start : start + self.per_page])


@dataclass(frozen=True)
class PageOf(Generic[T]):
    items: list[T]
    total: int
    page: Page = field(default_factory=lambda: Page(1, 20))


def matches_search(search: str | None, *values: str | None) -> bool:
    if not search:
        return True
    needle = search.casefold()
    return any(v is not None and needle in v.casefold() for v in values)


def split_csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def matches_tags(tags: Iterable[str], wanted: Sequence[str], match: str) -> bool:
    if not wanted:
        return True
    have = set(tags)
    return all(t in have for t in wanted) if match == "all" else any(t in have for t in wanted)


# ---------------------------------------------------------------- idempotency


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path and the
    JSON body (key order and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()
