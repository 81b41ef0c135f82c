"""``ServerSettings``: what ``run_server`` and ``run_ingest`` need, checked when created.

Every invalid value raises ``InvalidSettingError`` with a message that names the command-line
option and the value, so the CLI can show it to the operator as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kooperant.backoff import BackoffPolicy
from kooperant.protocol import TopicError, check_identifier
from server.errors import InvalidSettingError
from server.mail_settings import SmtpSettings, check_public_url
from server.mqtt_url import parse_broker_url
from server.proxies import ProxyNetwork, parse_trusted_proxy
from server.storage import DEFAULT_DATABASE_URL, parse_database_url

# Reconnect delays of ingest unless ``ServerSettings`` or ``IngestSettings`` set others.
DEFAULT_RECONNECT = BackoffPolicy(minimum=0.5, maximum=30.0)
# Seven days: an aggregator that is down for up to a week still gets what was published meanwhile.
DEFAULT_SESSION_EXPIRY_SECONDS = 604_800

MqttProtocol = Literal["5", "3.1.1"]
# "auto" connects with MQTT 5 and, when the broker does not accept it, with 3.1.1 until a restart.
MqttProtocolChoice = Literal["auto", "5", "3.1.1"]
MQTT_PROTOCOL_CHOICES: tuple[MqttProtocolChoice, ...] = ("auto", "5", "3.1.1")

# amqtt 0.12.1, the embedded broker, closes an MQTT 5 connection without a CONNACK.
EMBEDDED_BROKER_PROTOCOL: MqttProtocol = "3.1.1"

# The MQTT 5 Session Expiry Interval is a four-byte integer, and 0xFFFFFFFF means "never expires".
MAX_SESSION_EXPIRY_SECONDS = 0xFFFF_FFFF


# MQTT allows any UTF-8 client id, but kooperant keeps to characters that every broker accepts
# and that read well in broker logs and ACL files.
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

DEFAULT_EXPIRY_SWEEP_SECONDS = 60.0
# Days of offer history kept by ``server run``; 0 keeps it forever.
DEFAULT_HISTORY_RETENTION_DAYS = 365
# 100 years. A much longer period would reach before year 1, where Python's datetime ends, and 0
# already means "forever".
MAX_HISTORY_RETENTION_DAYS = 36_500


@dataclass(frozen=True)
class ServerSettings:
    """Settings of ``run_server`` and ``run_ingest``, validated when created.

    ``broker_url=None`` starts the embedded broker on ``127.0.0.1:embedded_broker_port``.
    ``cluster=None`` accepts offers of every cluster on the broker. ``tokens_file`` turns on
    per-member API tokens; without it the API and dashboard are open and show only offers meant
    for a whole cluster. ``mqtt_protocol="auto"`` means MQTT 5 with a fall-back to 3.1.1 for a
    given broker, and 3.1.1 for the embedded one. ``client_id=None`` means
    ``kooperant-aggregator[-CLUSTER]``. With ``shared_group`` every worker needs a client id of its
    own, so it must be given. The TLS
    files apply to an ``mqtts://`` broker only. ``trusted_proxies`` lists the IP addresses and
    CIDR networks of reverse proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` headers
    the HTTP server trusts. It is empty by default, so no peer can set them. Passwords are left
    out of the repr. ``history_retention_days`` is how many days of offer history the sweep of
    ``run_server`` keeps; 0 keeps it forever.
    """

    database: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None
    broker_username: str | None = None
    broker_password: str | None = field(default=None, repr=False)
    cluster: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    embedded_broker_port: int = 1883
    migrate: bool = True
    reconnect: BackoffPolicy = DEFAULT_RECONNECT
    tokens_file: Path | None = None
    expiry_sweep_seconds: float = DEFAULT_EXPIRY_SWEEP_SECONDS
    client_id: str | None = None
    shared_group: str | None = None
    session_expiry_seconds: int = DEFAULT_SESSION_EXPIRY_SECONDS
    mqtt_protocol: MqttProtocolChoice = "auto"
    broker_ca_file: Path | None = None
    broker_cert_file: Path | None = None
    broker_key_file: Path | None = None
    broker_key_password: str | None = field(default=None, repr=False)
    trusted_proxies: tuple[str, ...] = ()
    # Without ``smtp`` no e-mails about requests are sent; ``public_url`` adds links to them.
    smtp: SmtpSettings | None = None
    public_url: str | None = None
    # With ``metrics_token``, GET /metrics needs "Authorization: Bearer" with it. ``metrics_port``
    # serves /metrics and /healthz of ``server ingest`` on 127.0.0.1; ``server run`` ignores it.
    metrics_token: str | None = field(default=None, repr=False)
    metrics_port: int | None = None
    history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS

    def __post_init__(self) -> None:
        if not self.expiry_sweep_seconds > 0:
            raise ValueError(
                f"expiry_sweep_seconds must be above 0, got {self.expiry_sweep_seconds}"
            )
        parse_database_url(self.database)
        if self.cluster is not None:
            try:
                check_identifier(self.cluster, "cluster")
            except TopicError as error:
                raise InvalidSettingError("cluster_invalid", value=self.cluster) from error
        self._check_session()
        self._check_broker()
        self._check_tls_files()
        self._check_trusted_proxies()
        if self.public_url is not None:
            check_public_url(self.public_url)
        if self.metrics_token is not None and not self.metrics_token.strip():
            raise InvalidSettingError("metrics_token_empty")
        if not 0 <= self.history_retention_days <= MAX_HISTORY_RETENTION_DAYS:
            raise InvalidSettingError(
                "history_retention_invalid",
                value=self.history_retention_days,
                maximum=MAX_HISTORY_RETENTION_DAYS,
            )

    def secrets(self) -> tuple[str, ...]:
        """Return the passwords in these settings, for masking in logs; empty ones are left out."""
        database_password = parse_database_url(self.database).password
        smtp_password = self.smtp.password if self.smtp is not None else None
        values = (self.broker_password, self.broker_key_password, smtp_password)
        return tuple(value for value in (*values, database_password) if value)

    @property
    def broker_protocol(self) -> MqttProtocolChoice:
        """The MQTT version to connect with: ``auto``, except 3.1.1 for the embedded broker."""
        if self.broker_url is None and self.mqtt_protocol == "auto":
            return EMBEDDED_BROKER_PROTOCOL
        return self.mqtt_protocol

    @property
    def trusted_proxy_networks(self) -> tuple[ProxyNetwork, ...]:
        """The ``trusted_proxies`` as networks; a single address is a /32 or /128 network."""
        return tuple(parse_trusted_proxy(value) for value in self.trusted_proxies)

    def _check_session(self) -> None:
        if self.client_id is not None and not _CLIENT_ID.fullmatch(self.client_id):
            raise InvalidSettingError("client_id_invalid", value=self.client_id)
        if self.shared_group is not None:
            try:
                check_identifier(self.shared_group, "shared group")
            except TopicError as error:
                raise InvalidSettingError(
                    "shared_group_invalid", value=self.shared_group
                ) from error
            if self.client_id is None:
                raise InvalidSettingError("shared_group_needs_client_id", group=self.shared_group)
        if not 0 < self.session_expiry_seconds <= MAX_SESSION_EXPIRY_SECONDS:
            raise InvalidSettingError(
                "session_expiry_invalid",
                value=self.session_expiry_seconds,
                maximum=MAX_SESSION_EXPIRY_SECONDS,
            )
        if self.mqtt_protocol not in MQTT_PROTOCOL_CHOICES:
            raise InvalidSettingError("mqtt_protocol_invalid", value=self.mqtt_protocol)

    def _check_broker(self) -> None:
        if self.broker_password is not None and self.broker_username is None:
            raise InvalidSettingError("broker_password_without_username")
        if self.broker_url is not None:
            parse_broker_url(self.broker_url)
            return
        if self.shared_group is not None:
            raise InvalidSettingError("shared_group_embedded", group=self.shared_group)
        if self.mqtt_protocol == "5":
            raise InvalidSettingError(
                "embedded_broker_protocol",
                value=self.mqtt_protocol,
                supported=EMBEDDED_BROKER_PROTOCOL,
            )

    def _check_tls_files(self) -> None:
        files = {
            "--broker-ca-file": self.broker_ca_file,
            "--broker-cert-file": self.broker_cert_file,
            "--broker-key-file": self.broker_key_file,
        }
        set_files = {option: path for option, path in files.items() if path is not None}
        if not set_files:
            return
        uses_tls = self.broker_url is not None and parse_broker_url(self.broker_url).tls
        if not uses_tls:
            raise InvalidSettingError(
                "broker_tls_needs_mqtts",
                option=next(iter(set_files)),
                url=self.broker_url or f"mqtt://127.0.0.1:{self.embedded_broker_port}",
            )
        for option, path in set_files.items():
            if not path.is_file():
                raise InvalidSettingError("broker_tls_file_missing", option=option, path=str(path))
        if self.broker_key_file is not None and self.broker_cert_file is None:
            raise InvalidSettingError("broker_key_without_cert", path=str(self.broker_key_file))

    def _check_trusted_proxies(self) -> None:
        # A single string would be checked character by character, with a misleading error.
        if isinstance(self.trusted_proxies, str):
            raise TypeError("trusted_proxies must be a tuple of strings, not a string")
        for value in self.trusted_proxies:
            parse_trusted_proxy(value)
