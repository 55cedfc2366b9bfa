"""Server settings, read from `SLIPWAY_*` environment variables with pydantic-settings.

Lives apart from the server so that a bad value is reported before anything starts: the entry
point calls `load_settings()`, which turns a validation error into one readable line per variable
(`SettingsError`) instead of a traceback.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SLIPWAY_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SettingsError(ValueError):
    """Raised with a human-readable list of the environment variables that are wrong."""


class ServerSettings(BaseSettings):
    """Everything the server reads from its environment; see the README for the table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    model_uri: str = Field(
        description="Where the ONNX file lives: a path, file://, s3://, https://."
    )
    model_sha256: str | None = Field(
        default=None, description="Expected lowercase hex sha256 of the ONNX file."
    )
    allow_unverified_model: bool = Field(
        default=False, description="Serve a model without a sha256 (development only)."
    )
    model_name: str = Field(default="model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    model_version: str = Field(default="1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    host: str = "0.0.0.0"
    # Seldon Core v1 tells a custom server its REST port through PREDICTIVE_UNIT_HTTP_PORT.
    port: int = Field(
        default=9000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("SLIPWAY_PORT", "PREDICTIVE_UNIT_HTTP_PORT"),
    )
    batching: bool = Field(default=False, description="Merge concurrent requests (off by default).")
    batch_window_ms: float = Field(default=2.0, gt=0, le=60000)
    batch_eager: bool = Field(
        default=True,
        description="Run a batch as soon as no other in-flight request can join it.",
    )
    max_batch_size: int = Field(default=32, ge=1, le=65536)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    intra_op_threads: int = Field(
        default=1,
        ge=0,
        description="Threads inside one onnxruntime call (0: onnxruntime's default, all cores).",
    )
    inter_op_threads: int = Field(default=0, ge=0)
    intra_op_spinning: bool = Field(
        default=False,
        description="Let idle onnxruntime threads spin (onnxruntime's own default); off, they "
        "sleep, which is much faster when the cores are shared with HTTP work.",
    )
    inference_thread: Literal["auto", "inline", "pool"] = Field(
        default="auto",
        description="Run onnxruntime on the event loop (inline), in a worker thread (pool), or "
        "choose from the warm-up latency (auto).",
    )
    execution_providers: str = Field(
        default="CPUExecutionProvider",
        description="Comma-separated onnxruntime providers, in order of preference.",
    )
    inference_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Worker threads calling onnxruntime in pool mode (0: one per usable CPU).",
    )
    inline_threshold_ms: float = Field(default=0.2, ge=0)
    shutdown_delay_s: float = Field(
        default=0.0, ge=0, le=300, description="Seconds to keep serving, not ready, after SIGTERM."
    )
    drain_timeout_s: float = Field(default=30.0, gt=0)
    fetch_timeout_s: float = Field(default=300.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False

    @field_validator("model_sha256")
    @classmethod
    def _digest_is_hex(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().lower().removeprefix("sha256:")
        if not _SHA256.match(value):
            raise ValueError("must be 64 hexadecimal characters (a sha256 digest)")
        return value

    @field_validator("model_uri")
    @classmethod
    def _uri_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _digest_required(self) -> ServerSettings:
        if self.model_sha256 is None and not self.allow_unverified_model:
            raise ValueError(
                f"{ENV_PREFIX}MODEL_SHA256 is required "
                f"(or set {ENV_PREFIX}ALLOW_UNVERIFIED_MODEL=true)"
            )
        return self


def _variable(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "settings"
    name = str(loc[0])
    if name.isupper():  # an alias such as PREDICTIVE_UNIT_HTTP_PORT is already the variable
        return name
    return ENV_PREFIX + name.upper()


def load_settings() -> ServerSettings:
    """Read the settings or raise `SettingsError` naming each bad variable and why."""
    try:
        return ServerSettings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            got = f" (got {err['input']!r})" if err["type"] != "missing" and err["loc"] else ""
            lines.append(f"{_variable(err['loc'])}: {message}{got}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
