"""Settings of one MQTT connection: broker address, credentials, TLS, session and will."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MAX_SESSION_EXPIRY_SECONDS = 2**32 - 1
MAX_KEEPALIVE_SECONDS = 65_535
DEFAULT_RECEIVE_MAXIMUM = 100
MAX_RECEIVE_MAXIMUM = 65_535


@dataclass(frozen=True)
class TlsSettings:
    """Files for a TLS connection to the broker.

    The server certificate and host name are always verified, against ``ca_file`` or, when it is
    None, the system's CA certificates. ``cert_file`` and ``key_file`` give a client certificate.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WillMessage:
    """The message the broker publishes when the connection drops without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True

    def __post_init__(self) -> None:
        _check_qos(self.qos, "will qos")


@dataclass(frozen=True)
class ConnectOptions:
    """How to connect: broker, client id, credentials, TLS, session, will and acknowledgements.

    ``clean_start`` False with ``session_expiry_seconds`` above 0 keeps the session (its
    subscriptions and the QoS 1 messages queued for it) on the broker while disconnected. With
    protocol "3.1.1", ``clean_start`` is the clean session flag and the broker's own settings
    decide how long a kept session lives. ``manual_ack`` True sends the PUBACK of a received
    message only when ``MqttSession.ack`` is called. ``receive_maximum`` is the MQTT 5 Receive
    Maximum: how many QoS 1 and 2 messages the broker sends before it waits for acknowledgements.
    """

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsSettings | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    clean_start: bool = True
    session_expiry_seconds: int = 0
    keepalive_seconds: int = 30
    connect_timeout_seconds: float = 10.0
    will: WillMessage | None = None
    manual_ack: bool = False
    receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("invalid MQTT options: host is empty")
        if not 1 <= self.port <= 65_535:
            raise ValueError(f"invalid MQTT port {self.port}: expected 1 to 65535")
        if self.protocol not in ("5", "3.1.1"):
            raise ValueError(f"invalid MQTT protocol {self.protocol!r}: expected '5' or '3.1.1'")
        if not 0 <= self.session_expiry_seconds <= MAX_SESSION_EXPIRY_SECONDS:
            raise ValueError(
                f"invalid session expiry {self.session_expiry_seconds} s: "
                f"expected 0 to {MAX_SESSION_EXPIRY_SECONDS}"
            )
        if not 1 <= self.keepalive_seconds <= MAX_KEEPALIVE_SECONDS:
            raise ValueError(
                f"invalid keepalive {self.keepalive_seconds} s: "
                f"expected 1 to {MAX_KEEPALIVE_SECONDS}"
            )
        if not self.connect_timeout_seconds > 0:
            raise ValueError(
                f"invalid connect timeout {self.connect_timeout_seconds} s: expected above 0"
            )
        if not 1 <= self.receive_maximum <= MAX_RECEIVE_MAXIMUM:
            raise ValueError(
                f"invalid receive maximum {self.receive_maximum}: "
                f"expected 1 to {MAX_RECEIVE_MAXIMUM}"
            )
        if self.password is not None and self.username is None:
            raise ValueError("invalid MQTT options: a password is set without a username")

    @property
    def address(self) -> str:
        """``host:port`` for messages, with an IPv6 host in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _check_qos(qos: int, name: str) -> None:
    if qos not in (0, 1, 2):
        raise ValueError(f"invalid {name} {qos}: expected 0, 1 or 2")
