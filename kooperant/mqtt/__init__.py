"""An asyncio MQTT session over paho-mqtt, shared by the agent and the aggregator.

It does what aiomqtt 2.5 cannot: acknowledge received messages by hand (``manual_ack``), report the
CONNACK's ``session_present`` flag, and raise on a failure reason code in a PUBACK. The errors are
drawn in ``kooperant.mqtt.errors``.
"""

from kooperant.mqtt.connecting import RECEIVE_MAXIMUM
from kooperant.mqtt.errors import (
    ConnectFailed,
    ConnectionLost,
    MqttError,
    NotAuthorized,
    ProtocolNotAccepted,
    PublishRejected,
    SubscribeRejected,
    TlsSettingsError,
)
from kooperant.mqtt.filters import subscribed_to
from kooperant.mqtt.options import ConnectOptions, TlsSettings, WillMessage
from kooperant.mqtt.session import MqttSession, ReceivedMessage

__all__ = [
    "RECEIVE_MAXIMUM",
    "ConnectFailed",
    "ConnectOptions",
    "ConnectionLost",
    "MqttError",
    "MqttSession",
    "NotAuthorized",
    "ProtocolNotAccepted",
    "PublishRejected",
    "ReceivedMessage",
    "SubscribeRejected",
    "TlsSettings",
    "TlsSettingsError",
    "WillMessage",
    "subscribed_to",
]
