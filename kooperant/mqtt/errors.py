"""Errors of the MQTT session, sorted by what the caller does next.

::

    MqttError                 root of every error raised by kooperant.mqtt
    ├── ConnectFailed         connecting failed (refused, timed out, unreachable, TLS handshake
    │   │                     failed): retry with backoff
    │   ├── NotAuthorized     the broker rejected the user name, password or client: the operator
    │   │                     must fix the credentials, because a retry does not help
    │   └── ProtocolNotAccepted  the broker refused the MQTT version or sent no CONNACK: the
    │                         caller may try an older version
    ├── TlsSettingsError      a CA, certificate or key file is missing or invalid: the operator
    │                         must fix the file named in the message
    ├── ConnectionLost        an established connection dropped: reconnect with backoff
    ├── PublishRejected       the broker returned a failure reason code in its PUBACK
    └── SubscribeRejected     the broker rejected a topic filter in its SUBACK
"""

from __future__ import annotations


class MqttError(Exception):
    """Root of the errors raised by ``kooperant.mqtt``."""


class ConnectFailed(MqttError):
    """Connecting to the broker failed. The message names ``host:port`` and the reason."""


class NotAuthorized(ConnectFailed):
    """The broker rejected the credentials or did not authorize the client."""


class ProtocolNotAccepted(ConnectFailed):
    """The broker refused the MQTT version, or accepted the connection but sent no CONNACK.

    A broker that supports only MQTT 3.1.1 should return the MQTT 5 reason 0x84 or the 3.1.1
    return code 1. amqtt 0.12 instead sends no CONNACK at all to an MQTT 5 CONNECT.
    """


class TlsSettingsError(MqttError):
    """A TLS file (CA, certificate or key) is missing or invalid. The message names it."""


class ConnectionLost(MqttError):
    """The connection to the broker dropped after it was established."""


class PublishRejected(MqttError):
    """The broker returned a failure reason code (0x80 or above) for a publish."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"the broker rejected the message on topic {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


class SubscribeRejected(MqttError):
    """The broker rejected a subscription to a topic filter."""
