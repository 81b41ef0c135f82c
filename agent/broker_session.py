"""The agent's MQTT session settings, and the member status it publishes about itself.

The agent connects with clean start off and a session expiry (``broker.session_expiry_seconds``),
so the broker keeps its session across short disconnects. Its will is a retained QoS 1 offline
status with the reason ``connection_lost``; the broker publishes it when the connection drops
without a DISCONNECT. Right after connecting, the agent publishes a retained online status, and
before a clean disconnect a retained offline status with the reason ``stopped``. All three carry
the time the connection began, so the aggregator can tell a late will of an older connection from
the status of the current one. Status messages bypass the outbox and get no audit row: they
describe the live connection, so a queued one would be wrong by the time it is sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from agent.config import AgentConfig, BrokerSettings
from agent.errors import ConfigError, Problem
from agent.validation_messages import MESSAGES
from agent.yamlfile import YamlDocument
from kooperant import __version__
from kooperant.mqtt import ConnectOptions, TlsSettings, TlsSettingsError, WillMessage
from kooperant.mqtt.tls import build_ssl_context
from kooperant.protocol import MemberState, MemberStatus, OfflineReason, status_topic


def broker_tls(config: AgentConfig) -> TlsSettings | None:
    """Return the TLS settings of ``config``'s broker with paths resolved, or ``None``."""
    broker = config.broker
    if not broker.uses_tls:
        return None
    files = broker.tls
    if files is None:
        return TlsSettings()
    password = files.key_password
    return TlsSettings(
        ca_file=_resolved(config, files.ca_file),
        cert_file=_resolved(config, files.cert_file),
        key_file=_resolved(config, files.key_file),
        key_password=None if password is None else password.get_secret_value(),
    )


def check_broker_tls(config: AgentConfig) -> None:
    """Load the broker's TLS files once, so that an unusable file stops the agent at start.

    Raises ``ConfigError`` naming the config key and the file. Only the operator can fix the file,
    and without this check every connection attempt would fail the same way.
    """
    tls = broker_tls(config)
    if tls is None:
        return
    parts: list[tuple[str, TlsSettings]] = []
    if tls.ca_file is not None:
        parts.append(("ca_file", TlsSettings(ca_file=tls.ca_file)))
    if tls.cert_file is not None:
        parts.append(("cert_file", replace(tls, ca_file=None)))
    for key, settings in parts:
        try:
            build_ssl_context(settings)
        except TlsSettingsError as error:
            raise _tls_config_error(config, key, error) from error


def _tls_config_error(config: AgentConfig, key: str, error: TlsSettingsError) -> ConfigError:
    reason = MESSAGES("config.tls_file_unusable", reason=error)
    location = ("broker", "tls", key)
    try:
        # The file is read again only to find the key's line for the message.
        problem = YamlDocument.load(config.source, config.variables).problem(location, reason)
    except ConfigError:
        problem = Problem(None, ".".join(location), reason)
    return ConfigError(config.source, [problem])


def _resolved(config: AgentConfig, path: Path | None) -> Path | None:
    return None if path is None else config.resolve(path)


def first_protocol(settings: BrokerSettings) -> Literal["5", "3.1.1"]:
    """Return the MQTT version of the first connection attempt: 5 unless 3.1.1 is configured."""
    return "3.1.1" if settings.protocol == "3.1.1" else "5"


def _fixed_protocol(settings: BrokerSettings) -> Literal["5", "3.1.1"]:
    if settings.protocol == "auto":
        raise ValueError("broker.protocol is 'auto': pass the version of this attempt")
    return settings.protocol


def member_status(
    cluster: str, member: str, connected_at: datetime, reason: OfflineReason | None = None
) -> MemberStatus:
    """Return the status of this agent's connection: online, or offline for ``reason``."""
    state = MemberState.ONLINE if reason is None else MemberState.OFFLINE
    return MemberStatus(cluster, member, state, connected_at, reason, __version__)


def connect_options(
    settings: BrokerSettings,
    client_id: str,
    will: MemberStatus,
    tls: TlsSettings | None,
    protocol: Literal["5", "3.1.1"] | None = None,
) -> ConnectOptions:
    """Return the options of one connection attempt, with ``will`` as its MQTT will.

    ``protocol`` overrides ``settings.protocol``, which must be given when that is ``auto``.
    """
    password = settings.password
    if tls is None and settings.uses_tls:
        tls = TlsSettings()
    return ConnectOptions(
        host=settings.host,
        port=settings.port,
        client_id=client_id,
        username=settings.username,
        password=None if password is None else password.get_secret_value(),
        tls=tls,
        protocol=protocol or _fixed_protocol(settings),
        clean_start=False,
        session_expiry_seconds=settings.session_expiry_seconds,
        # Requests are acknowledged only once stored, so a crash before that loses none.
        manual_ack=True,
        connect_timeout_seconds=settings.connect_timeout_seconds,
        will=WillMessage(
            status_topic(will.cluster, will.member), will.to_payload(), qos=1, retain=True
        ),
    )
