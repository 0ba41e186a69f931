"""The api-gateway's settings (``CLARION_GATEWAY_*``), imported by the composition root
(``app``) and named there."""

from __future__ import annotations

import re
from typing import Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from clarion_shared.settings import DEV_ADMIN_TOKEN, ServiceSettings
from clarion_shared.tail import FETCH_MAX_WAIT_MS

from .campaigns.audience_csv import CsvLimits
from .campaigns.domain import MAX_RECIPIENTS
from .campaigns.objects_s3 import ObjectStoreConfig
from .campaigns.uploads import CSV_MAX_BYTES
from .operators.domain import (
    DEV_ADMIN_EMAIL,
    DEV_ADMIN_PASSWORD,
    MIN_PASSWORD_LENGTH,
    LoginLimits,
    SessionPolicy,
)
from .proxies.peers import Peer
from .sends.domain import SendLimits
from .templates.domain import TemplateLimits
from .webhooks.service import WebhookRules

# Bytes a send command takes besides its template, receivers and variables (ids,
# channel ids, tag, counters), with room to spare.
_RECORD_OVERHEAD = 16 * 1024
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_GATEWAY_", extra="ignore", frozen=True)

    db_name: str = "clarion_gateway"
    port: int = 8080
    admin_token: str = Field(
        default=DEV_ADMIN_TOKEN,
        validation_alias=AliasChoices(
            "CLARION_GATEWAY_ADMIN_TOKEN", "CLARION_ADMIN_TOKEN", "admin_token"
        ),
        description="Bearer token of /admin; the default is refused in production.",
    )
    dev_app_id: str = Field(
        default="clarion-dev",
        validation_alias=AliasChoices(
            "CLARION_DEV_APP_ID", "CLARION_GATEWAY_DEV_APP_ID", "dev_app_id"
        ),
    )
    dev_api_key: str = Field(
        default="clarion-dev-key",
        validation_alias=AliasChoices(
            "CLARION_DEV_API_KEY", "CLARION_GATEWAY_DEV_API_KEY", "dev_api_key"
        ),
    )
    # Webhook endpoints (webhooks) and channels' provider URLs: API.md's setting, under
    # exactly its name.
    webhooks_allow_private: bool = Field(
        default=False,
        validation_alias=AliasChoices("CLARION_WEBHOOKS_ALLOW_PRIVATE", "webhooks_allow_private"),
        description="CLARION_WEBHOOKS_ALLOW_PRIVATE: accept http and loopback or private "
        "addresses in webhook URLs and channels' provider URLs (local receivers and "
        "providers); the emitter and the delivery workers check again at delivery.",
    )
    webhook_secret_overlap_s: int = Field(
        default=24 * 3600,
        ge=0,
        description="How long a rotated signing secret keeps signing deliveries beside the "
        "new one, so receivers switch without a gap.",
    )
    webhook_republish_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often each process publishes the webhook configurations written "
        "but not published (a broker away, a process that died between the two).",
    )
    # The dashboard's first operator (operators): API.md's settings, under exactly their
    # names. Created at start when missing (superuser: owns every app); an existing
    # one keeps its password.
    dashboard_admin_email: str = Field(
        default=DEV_ADMIN_EMAIL,
        validation_alias=AliasChoices("CLARION_DASHBOARD_ADMIN_EMAIL", "dashboard_admin_email"),
        description="CLARION_DASHBOARD_ADMIN_EMAIL: the first dashboard operator's email.",
    )
    dashboard_admin_password: str | None = Field(
        default=None,
        min_length=MIN_PASSWORD_LENGTH,
        validation_alias=AliasChoices(
            "CLARION_DASHBOARD_ADMIN_PASSWORD", "dashboard_admin_password"
        ),
        description="CLARION_DASHBOARD_ADMIN_PASSWORD: its password when it is created. "
        "Unset: the documented dev password, except in production, where no first "
        "operator is made (POST /admin/operators makes operators); the dev password is "
        "refused there.",
    )
    dashboard_session_idle_s: int = Field(
        default=2 * 3600, ge=60, description="A dashboard session unused this long ends."
    )
    dashboard_session_lifetime_s: int = Field(
        default=12 * 3600, ge=60, description="A dashboard session ends this long after sign-in."
    )
    dashboard_login_window_s: int = Field(
        default=15 * 60, ge=1, description="The window failed sign-ins are counted in."
    )
    dashboard_login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins per email and address in a window."
    )
    dashboard_login_max_failures_per_ip: int = Field(
        default=50, ge=1, description="Failed sign-ins per address in a window, any email."
    )
    dispatcher_url: str = "http://127.0.0.1:8081"
    directory_url: str = "http://127.0.0.1:8083"
    webhooks_url: str = "http://127.0.0.1:8082"
    peer_timeout_s: float = Field(default=10.0, gt=0)
    realtime_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a realtime send waits for its result."
    )
    realtime_max_receivers: int = Field(default=10, ge=1)
    batch_max_receivers: int = Field(default=10_000, ge=1)
    batch_chunk_size: int = Field(
        default=500, ge=1, le=5_000, description="Receivers per batch command record."
    )
    batch_chunk_max_bytes: int = Field(
        default=512 * 1024,
        ge=64 * 1024,
        le=900_000,
        description="Bytes of a batch command record at most (the broker's default "
        "message.max.bytes is 1 MB): a chunk is cut earlier when its receivers' variables "
        "weigh more.",
    )
    variable_max_bytes: int = Field(
        default=8 * 1024, ge=1, description="One variable value of a send, as JSON."
    )
    receiver_variables_max_bytes: int = Field(
        default=32 * 1024, ge=1, description="All the variables of one receiver, as JSON."
    )
    template_channel_max_bytes: int = Field(
        default=64 * 1024, ge=1, description="One channel's content of a template, as JSON."
    )
    template_max_bytes: int = Field(
        default=128 * 1024,
        ge=1,
        description="A template version's content (all channels) and variable schema, as JSON.",
    )
    key_cache_ttl_s: float = Field(default=30.0, ge=0)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=1)
    idempotency_lease_s: int = Field(
        default=60,
        ge=1,
        description="A request with an Idempotency-Key that has not answered after this "
        "long is taken as dead (its process crashed): a retry runs it again.",
    )
    campaign_scheduler_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often each gateway process looks for scheduled campaigns that are "
        "due (and sends cut short): a campaign fires at most this late.",
    )
    campaign_send_stall_s: float = Field(
        default=30.0,
        gt=0,
        description="A campaign sending but not dispatched for this long is resumed by the "
        "scheduler (its sender crashed, or the broker or the dispatcher was away).",
    )
    group_id: str = Field(
        default="api-gateway",
        description="Prefix of the consumer groups, one per topic: <prefix>.<topic>.",
    )
    reply_fetch_max_wait_ms: int = Field(
        default=FETCH_MAX_WAIT_MS,
        ge=0,
        description="fetch_max_wait_ms of this process's tails (realtime replies, authoring "
        "changes): how often an idle tail asks the broker again; a record is answered at "
        "once whatever it is (clarion_shared.tail).",
    )
    authoring_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Templates and channels each process keeps for sends (authoring.cache); "
        "0 turns the cache off: every send reads them from the database.",
    )
    authoring_cache_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a cached template or channel is used at most: how stale it "
        "can be when the announcement of a change was lost.",
    )

    # CSV imports (campaigns.import_routes): the self-hosted upload URLs.
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="The gateway's address as clients reach it: the base of upload URLs.",
    )
    upload_secret: str = Field(
        default="",
        description="Key of the upload URLs' HMAC signatures; empty: derived from the "
        "internal token (dev only: a production gateway refuses to start without it).",
    )
    upload_url_ttl_s: int = Field(
        default=15 * 60, ge=60, le=7 * 24 * 3600, description="How long an upload URL works."
    )
    csv_max_bytes: int = Field(
        default=CSV_MAX_BYTES, ge=1, description="Largest CSV upload (413 above)."
    )
    # CSV imports through an S3-compatible object store (campaigns.objects): upload URLs
    # are its presigned ones. No endpoint and no bucket: none, the self-hosted URLs.
    s3_endpoint_url: str = Field(
        default="",
        description="The store's S3 API, as the gateway and the clients reach it "
        "(presigned URLs name it): http(s)://host[:port].",
    )
    s3_bucket: str = Field(default="", description="The bucket of the uploads (created before).")
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = Field(default="us-east-1", min_length=1)
    s3_key_prefix: str = Field(
        default="",
        max_length=256,
        description="Put before every object key ({prefix}{app}/{campaign}/{upload}.csv).",
    )
    s3_path_style: bool = Field(
        default=True,
        description="{endpoint}/{bucket}/{key} URLs (self-hosted servers); false: "
        "{bucket}.{endpoint host}/{key} (AWS).",
    )

    def object_store(self) -> ObjectStoreConfig | None:
        """The object store of uploads; None when none is configured."""
        if not self.s3_endpoint_url:
            return None
        return ObjectStoreConfig(
            self.s3_endpoint_url,
            self.s3_bucket,
            self.s3_access_key,
            self.s3_secret_key,
            self.s3_region,
            self.s3_key_prefix,
            self.s3_path_style,
        )

    @model_validator(mode="after")
    def _object_store_whole(self) -> Self:
        named = {
            "S3_ENDPOINT_URL": self.s3_endpoint_url,
            "S3_BUCKET": self.s3_bucket,
            "S3_ACCESS_KEY": self.s3_access_key,
            "S3_SECRET_KEY": self.s3_secret_key,
        }
        missing = [f"CLARION_GATEWAY_{name}" for name, value in named.items() if not value]
        if missing and len(missing) < len(named):
            raise ValueError(
                "the object store is configured in part: set CLARION_GATEWAY_S3_ENDPOINT_URL, "
                "_BUCKET, _ACCESS_KEY and _SECRET_KEY together, or none of them "
                f"(missing: {', '.join(missing)})"
            )
        if missing:
            return self
        endpoint = urlsplit(self.s3_endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
            raise ValueError("CLARION_GATEWAY_S3_ENDPOINT_URL must be an http(s)://host URL")
        if endpoint.query or endpoint.fragment:
            raise ValueError("CLARION_GATEWAY_S3_ENDPOINT_URL takes no query or fragment")
        if not _BUCKET.fullmatch(self.s3_bucket):
            raise ValueError(
                "CLARION_GATEWAY_S3_BUCKET must be an S3 bucket name: 3-63 lowercase "
                "letters, digits, dots and hyphens, starting and ending with a letter or digit"
            )
        if self.s3_key_prefix.startswith("/"):
            raise ValueError("CLARION_GATEWAY_S3_KEY_PREFIX must not start with /")
        return self

    def csv_limits(self) -> CsvLimits:
        return CsvLimits(
            max_recipients=MAX_RECIPIENTS,
            max_bytes=self.csv_max_bytes,
            variable_max_bytes=self.variable_max_bytes,
            receiver_variables_max_bytes=self.receiver_variables_max_bytes,
        )

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.environment == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError(
                "CLARION_GATEWAY_ADMIN_TOKEN must be set in production (the default is public)"
            )
        if self.environment == "production" and self.dashboard_admin_password == DEV_ADMIN_PASSWORD:
            raise ValueError(
                "CLARION_DASHBOARD_ADMIN_PASSWORD must not be the dev password in production"
            )
        return self

    @model_validator(mode="after")
    def _one_receiver_fits_a_chunk(self) -> Self:
        # Every batch record holds the template and at least one receiver.
        needed = self.template_max_bytes + self.receiver_variables_max_bytes + _RECORD_OVERHEAD
        if needed > self.batch_chunk_max_bytes:
            raise ValueError(
                f"CLARION_GATEWAY_BATCH_CHUNK_MAX_BYTES must hold a template and one receiver's "
                f"variables: at least {needed} with the template and variable limits set"
            )
        return self

    def send_limits(self) -> SendLimits:
        return SendLimits(
            realtime_max=self.realtime_max_receivers,
            batch_max=self.batch_max_receivers,
            chunk_size=self.batch_chunk_size,
            chunk_max_bytes=self.batch_chunk_max_bytes,
            variable_max_bytes=self.variable_max_bytes,
            receiver_variables_max_bytes=self.receiver_variables_max_bytes,
        )

    def template_limits(self) -> TemplateLimits:
        return TemplateLimits(
            channel_content_max_bytes=self.template_channel_max_bytes,
            template_max_bytes=self.template_max_bytes,
        )

    def webhook_rules(self) -> WebhookRules:
        return WebhookRules(self.webhooks_allow_private, self.webhook_secret_overlap_s)

    def first_operator(self) -> tuple[str, str] | None:
        """The dashboard's first operator (email, password), if one is to be ensured."""
        if self.dashboard_admin_password is not None:
            return self.dashboard_admin_email, self.dashboard_admin_password
        if self.environment == "production":
            return None
        return self.dashboard_admin_email, DEV_ADMIN_PASSWORD

    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(self.dashboard_session_idle_s, self.dashboard_session_lifetime_s)

    def login_limits(self) -> LoginLimits:
        return LoginLimits(
            self.dashboard_login_window_s,
            self.dashboard_login_max_failures,
            self.dashboard_login_max_failures_per_ip,
        )

    @property
    def secure_cookies(self) -> bool:
        """Cookies are ``Secure`` when clients reach the gateway over https."""
        return urlsplit(self.public_url).scheme == "https"

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``: what a browser's Origin says."""
        url = urlsplit(self.public_url)
        return f"{url.scheme}://{url.netloc}".lower()

    def peer_urls(self) -> dict[Peer, str]:
        return {
            "dispatcher": self.dispatcher_url,
            "directory": self.directory_url,
            "webhooks": self.webhooks_url,
        }
