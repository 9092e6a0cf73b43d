"""One settings class, built at start-up by `get_settings()` (never at import).

Every value can come from the environment (or a `.env` file): the same code runs on the
embedded stack and against a production Temporal cluster and PostgreSQL.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    temporal_address: str | None = Field(
        default=None, description="host:port of a Temporal frontend; unset = embedded dev server"
    )
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key")
    temporal_tls: bool = False
    temporal_grpc_compression: Literal["auto", "gzip", "none"] = Field(
        default="auto",
        description="gzip on the worker's and client's gRPC messages; auto = none to a "
        "loopback address, gzip to any other",
    )
    task_queue: str = "revops"

    database_url: str | None = Field(
        default=None, description="postgresql://user:pass@host:port/db; unset = embedded PostgreSQL"
    )

    state_dir: Path = Field(default=PROJECT_ROOT / "state", description="Embedded stack's data")
    rules_dir: Path = Field(default=PROJECT_ROOT / "rules")
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    postgres_port: int = 55432
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    hubspot_client_secret: SecretStr | None = Field(
        default=None, description="HubSpot app client secret (signature v3)"
    )
    hubspot_client_secret_previous: SecretStr | None = Field(
        default=None, description="Accepted too while a secret rotation is under way"
    )
    hubspot_api_base: str = "https://api.hubapi.com"
    hubspot_access_token: SecretStr | None = None
    public_base_url: str | None = Field(
        default=None,
        description="Scheme and host the webhook sender used (HubSpot signs the full URI)",
    )

    smtp_host: str | None = Field(
        default=None, description="SMTP server for notifications; unset = the embedded mailbox"
    )
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Require STARTTLS (port 587)")
    smtp_use_tls: bool = Field(default=False, description="Implicit TLS (port 465)")
    smtp_timeout: float = Field(default=30.0, gt=0, description="Seconds per SMTP step")
    mail_from: str = "revops@localhost"
    chat_webhook_url: SecretStr | None = Field(
        default=None, description="Slack-style incoming webhook for notifications (a secret)"
    )
    embedded_smtp_port: int = Field(
        default=8025, description="Embedded mailbox (when SMTP_HOST is unset), on 127.0.0.1"
    )

    log_level: str = "INFO"
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="Event loop of every entry point: uvloop, or the standard one (debugging, Windows)",
    )
    worker_max_concurrent_activities: int = Field(
        default=200,
        ge=1,
        description="Activities one worker runs at once; beyond that they wait in the "
        "Temporal server's task queue, which costs the server more than waiting here",
    )
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Allocations between collections of the worker's youngest generation "
        "(Python's default: 700); 0 keeps Python's defaults (starter/gc_tuning.py)",
    )

    @field_validator("hubspot_client_secret", "hubspot_access_token", "smtp_password")
    @classmethod
    def _no_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().lower() in {"changeme", "secret", ""}:
            raise ValueError("refusing a placeholder secret; set a real value or leave it unset")
        return value

    @model_validator(mode="after")
    def _one_smtp_tls_mode(self) -> Settings:
        if self.smtp_starttls and self.smtp_use_tls:
            raise ValueError("SMTP_STARTTLS and SMTP_USE_TLS exclude each other: pick one")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together")
        return self

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def temporal_gzip(self) -> bool:
        """Whether gRPC messages to the frontend are gzipped. Over loopback the bytes cost
        nothing to move and compressing them costs CPU on both sides (bench/README.md)."""
        if self.temporal_grpc_compression != "auto":
            return self.temporal_grpc_compression == "gzip"
        return not _is_loopback(self.effective_temporal_address)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"postgresql://revops@127.0.0.1:{self.postgres_port}/revops"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def _is_loopback(address: str) -> bool:
    """`127.0.0.1:7233`, `localhost:7233`, `[::1]:7233`: the frontend is on this machine."""
    if address.startswith("["):
        host = address[1:].split("]", 1)[0]
    else:
        host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
