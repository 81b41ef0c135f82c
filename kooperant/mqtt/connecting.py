"""Opening the connection of an ``MqttSession``: the paho client, CONNECT and its failures."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kooperant.mqtt.errors import ConnectFailed
from kooperant.mqtt.options import DEFAULT_RECEIVE_MAXIMUM, ConnectOptions
from kooperant.mqtt.tls import build_ssl_context

# The default MQTT 5 Receive Maximum the session announces (ConnectOptions.receive_maximum): the
# broker sends at most this many QoS 1 and 2 messages that are not acknowledged yet. With
# manual_ack this bounds the received messages that wait for ack(), while the inbox behind
# messages() itself has no limit. MQTT 3.1.1 has no such property, so there the broker's own
# setting (Mosquitto: max_inflight_messages) applies.
RECEIVE_MAXIMUM = DEFAULT_RECEIVE_MAXIMUM


def make_client(options: ConnectOptions) -> mqtt.Client:
    """Make a paho client with the options' protocol, TLS, credentials and will.

    The client never reconnects by itself (``reconnect_on_failure=False``), so its network thread
    ends when the connection drops.
    """
    version5 = options.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        protocol=mqtt.MQTTv5 if version5 else mqtt.MQTTv311,
        clean_session=None if version5 else options.clean_start,
        reconnect_on_failure=False,
        manual_ack=options.manual_ack,
    )
    # paho uses this timeout for the TCP connect and for the TLS handshake.
    client.connect_timeout = options.connect_timeout_seconds
    if options.tls is not None:
        client.tls_set_context(build_ssl_context(options.tls))
    if options.username is not None:
        client.username_pw_set(options.username, options.password)
    if options.will is not None:
        will = options.will
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client


def open_connection(client: mqtt.Client, options: ConnectOptions) -> None:
    """Open the TCP (and TLS) connection and send CONNECT. It blocks, so call it in a thread.

    Raises ``ConnectFailed`` naming ``host:port`` and the reason.
    """
    address = options.address
    try:
        if options.protocol == "5":
            client.connect(
                options.host,
                options.port,
                options.keepalive_seconds,
                clean_start=options.clean_start,
                properties=_connect_properties(options),
            )
        else:
            client.connect(options.host, options.port, options.keepalive_seconds)
    except ssl.SSLCertVerificationError as error:
        raise ConnectFailed(
            f"TLS handshake with MQTT broker {address} failed: the server certificate "
            f"was not accepted: {error.verify_message}. Check the CA file and the host name"
        ) from error
    except ssl.SSLError as error:
        raise ConnectFailed(
            f"TLS handshake with MQTT broker {address} failed: {error.reason or error}"
        ) from error
    except TimeoutError as error:
        raise ConnectFailed(
            f"connecting to MQTT broker {address} timed out after "
            f"{options.connect_timeout_seconds} s"
        ) from error
    except OSError as error:
        raise ConnectFailed(
            f"connecting to MQTT broker {address} failed: {error.strerror or error}"
        ) from error


def _connect_properties(options: ConnectOptions) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = options.session_expiry_seconds
    properties.ReceiveMaximum = options.receive_maximum
    return properties
