"""Broker URLs of the form ``mqtt://HOST[:PORT]`` (plain TCP) or ``mqtts://HOST[:PORT]`` (TLS)."""

from __future__ import annotations

from dataclasses import dataclass

from server.server_urls import split_server_url
from server.storage.urls import mask_password

DEFAULT_MQTT_PORT = 1883
DEFAULT_MQTTS_PORT = 8883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Host and TCP port of an MQTT broker, and whether the connection uses TLS."""

    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Return the address in ``url``, or raise ``InvalidSettingError`` naming it and the problem.

    Credentials belong in the separate username and password settings, so a URL that carries
    them is rejected and shown with the password masked.
    """
    parts = split_server_url(url, ("mqtt", "mqtts"), "broker_url", mask_password(url))
    tls = parts.scheme == "mqtts"
    default_port = DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT
    return BrokerAddress(parts.host, parts.port or default_port, tls=tls)
