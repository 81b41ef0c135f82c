"""Settings of the OPC UA adapter and the default mapping from browse names to resource ids."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from adapters.base import AdapterSettings
from adapters.opcua.models.mapping import NodeMappings
from adapters.opcua.monitoring import DataChangeFilterSettings
from kooperant.net import mask_url_credentials
from kooperant.protocol import check_identifier

_NOT_ALLOWED_IN_RESOURCE_ID = re.compile(r"[^a-z0-9_.-]")
_RESOURCE_ID_MAX_LENGTH = 64

# Upper bounds well above any useful value: larger numbers overflow asyncua's UInt32
# millisecond fields or Python's timedelta instead of being rejected with the key.
MAX_TIMEOUT_SECONDS = 3600.0
MAX_INTERVAL_MS = 3_600_000.0
MAX_POLL_SECONDS = 86_400.0
MAX_RECONNECT_SECONDS = 3600.0
MAX_CLOCK_SKEW_SECONDS = 31_536_000.0

# The security policies of OPC 10000-7 that the adapter offers, as named in a policy's URI.
SECURITY_POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")


class OpcUaSettings(AdapterSettings):
    """The ``opcua`` adapter section of the agent config."""

    # A url may carry a password, so validation errors must not echo the input.
    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, allow_inf_nan=False
    )

    url: str = Field(description="Server endpoint, for example opc.tcp://10.0.0.5:4840.")
    timeout_seconds: float = Field(
        5.0, gt=0, le=MAX_TIMEOUT_SECONDS, description="Time limit of each request."
    )
    # A state change waits up to one sampling and one publishing interval on the server. At 250
    # ms each, that is at most 0.5 s of the 1 s that a change may take to reach the aggregator's
    # API (bench/latency.py). A quiet subscription costs the same as at 1000 ms, because the
    # keep-alive count scales with the publishing interval (keepalive.py).
    sampling_interval_ms: float = Field(
        250.0, ge=0, le=MAX_INTERVAL_MS, description="How often the server samples, in ms."
    )
    publishing_interval_ms: float = Field(
        250.0,
        gt=0,
        le=MAX_INTERVAL_MS,
        description="How often the server sends subscription notifications, in ms.",
    )
    poll_interval_seconds: float = Field(
        5.0,
        gt=0,
        le=MAX_POLL_SECONDS,
        description="Read interval when the server rejects the subscription.",
    )
    # At most half of the 600 s session timeout that the client requests.
    keepalive_seconds: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description=(
            "Longest silence, in seconds, before a connection that stopped responding without "
            "closing is dropped and made again."
        ),
    )
    max_clock_skew_seconds: float = Field(
        300.0,
        gt=0,
        le=MAX_CLOCK_SKEW_SECONDS,
        description=(
            "Largest difference, in seconds, between a value's source timestamp and the agent's "
            "clock that is still trusted; beyond it the agent's receive time is used."
        ),
    )
    data_change_filter: DataChangeFilterSettings = Field(
        default_factory=lambda: DataChangeFilterSettings.model_validate({}),
        description="Trigger and deadband of the monitored items.",
    )
    reconnect_min_seconds: float = Field(
        1.0, gt=0, le=MAX_RECONNECT_SECONDS, description="First reconnect delay."
    )
    # After a server comes back, the next attempt starts within this delay, so states flow again
    # within about 10 s (an estimate that leaves 2 s to connect, browse and read).
    reconnect_max_seconds: float = Field(
        8.0, gt=0, le=MAX_RECONNECT_SECONDS, description="Maximum reconnect delay."
    )
    machines: dict[str, str] = Field(
        default_factory=dict,
        description="Resource id per machine browse name; unlisted machines get a slug.",
    )
    nodes: NodeMappings = Field(
        default=(),
        description="State variables mapped by hand, for servers without a companion model.",
    )
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    security_policy: str = Field(
        "None", description="Security policy of the secure channel, one of SECURITY_POLICIES."
    )
    security_mode: str = Field(
        "None", description="Message security mode: None, Sign or SignAndEncrypt."
    )
    pki_dir: Path = Field(
        Path("pki"),
        description="Folder of the agent's certificate and of trusted and rejected server "
        "certificates; relative to the agent config's folder.",
    )
    user_certificate: Path | None = Field(
        None, description="Certificate (PEM or DER) for a user certificate login."
    )
    user_private_key: Path | None = Field(
        None, description="Private key (PEM or DER, unencrypted) of user_certificate."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        # hide_input_in_errors covers pydantic's own text, not these messages, so they mask too.
        masked_url = mask_url_credentials(url)
        if not url.startswith("opc.tcp://"):
            raise ValueError(
                f"invalid url {masked_url!r}: an OPC UA endpoint starts with opc.tcp://, "
                "for example opc.tcp://127.0.0.1:4840"
            )
        # Any "@" is rejected, not only one in the host part, because a "/" in a password hides
        # the user info from urlsplit and the adapter logs the url.
        if "@" in url:
            raise ValueError(
                "invalid url: remove the user name and password from the url and set the "
                "username and password keys instead"
            )
        try:
            hostname = urlsplit(url).hostname
        except ValueError as error:
            # Python's message is not shown because it can repeat the host part.
            raise ValueError(
                f"invalid url {masked_url!r}: check the host, e.g. the brackets of an IPv6 address"
            ) from error
        if not hostname:
            raise ValueError(f"invalid url {masked_url!r}: the host name is missing")
        return url

    @field_validator("machines")
    @classmethod
    def _check_resource_ids(cls, machines: dict[str, str]) -> dict[str, str]:
        for browse_name, resource in machines.items():
            # TopicError is a ValueError, so pydantic reports it as a validation error.
            check_identifier(resource, f"resource (machines.{browse_name})")
        return machines

    @field_validator("pki_dir")
    @classmethod
    def _check_pki_dir(cls, pki_dir: Path) -> Path:
        # Path("") is ".", which would put the agent's key beside the config.
        if str(pki_dir) in ("", "."):
            raise ValueError("pki_dir is empty: name a folder, e.g. pki")
        return pki_dir

    @field_validator("security_policy")
    @classmethod
    def _check_security_policy(cls, policy: str) -> str:
        if policy not in SECURITY_POLICIES:
            raise ValueError(
                f"invalid security_policy {policy!r}: use one of {', '.join(SECURITY_POLICIES)}"
            )
        return policy

    @field_validator("security_mode")
    @classmethod
    def _check_security_mode(cls, mode: str) -> str:
        if mode not in SECURITY_MODES:
            raise ValueError(
                f"invalid security_mode {mode!r}: use one of {', '.join(SECURITY_MODES)}"
            )
        return mode

    @model_validator(mode="after")
    def _check_security(self) -> OpcUaSettings:
        if self.security_policy == "None" and self.security_mode != "None":
            raise ValueError(
                f"security_mode {self.security_mode} needs a security_policy other than None, "
                f"for example Basic256Sha256; or set security_mode: None"
            )
        if self.security_policy != "None" and self.security_mode == "None":
            raise ValueError(
                f"security_policy {self.security_policy} needs security_mode Sign or "
                "SignAndEncrypt; or set security_policy: None"
            )
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("set both user_certificate and user_private_key, or neither")
        if self.user_certificate is not None and self.username is not None:
            raise ValueError(
                "set either username and password or user_certificate and user_private_key, "
                "not both"
            )
        if self.user_certificate is not None and self.security_policy == "None":
            # The client signs the server's nonce with the user's key; over a channel without
            # security that proof and the certificate travel unprotected.
            raise ValueError(
                "a user_certificate login needs a secured channel: set security_policy and "
                "security_mode, for example Basic256Sha256 and SignAndEncrypt"
            )
        return self

    @model_validator(mode="after")
    def _check_pairs(self) -> OpcUaSettings:
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError(
                f"reconnect_max_seconds ({self.reconnect_max_seconds}) is smaller than "
                f"reconnect_min_seconds ({self.reconnect_min_seconds}); raise the maximum"
            )
        if (self.password is None) != (self.username is None):
            raise ValueError("set both username and password, or neither")
        return self


def default_resource_id(browse_name: str) -> str | None:
    """Return the browse name as a resource id, or None if no letter or digit is left.

    The id is lowercase, other characters become ``-``, leading ``-``, ``_`` and ``.`` are
    dropped and the result is cut to 64 characters: ``"Lathe B2"`` becomes ``"lathe-b2"``.
    """
    slug = _NOT_ALLOWED_IN_RESOURCE_ID.sub("-", browse_name.lower()).lstrip("-_.")
    slug = slug[:_RESOURCE_ID_MAX_LENGTH]
    return slug or None
