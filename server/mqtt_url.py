"""Broker URLs of the form ``mqtt://HOST[:PORT]`` (plain TCP) or ``mqtts://HOST[:PORT]`` (TLS)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from server.errors import InvalidSettingError
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
    parts = urlsplit(url)
    shown = mask_password(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise InvalidSettingError("broker_url_scheme", url=shown)
    if parts.username is not None or parts.password is not None:
        raise InvalidSettingError("broker_url_credentials", url=shown)
    if not parts.hostname:
        raise InvalidSettingError("broker_url_host", url=shown)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidSettingError("broker_url_path", url=shown)
    try:
        port = parts.port
    except ValueError as error:
        raise InvalidSettingError("broker_url_port", url=shown) from error
    if port == 0:
        raise InvalidSettingError("broker_url_port", url=shown)

    tls = parts.scheme == "mqtts"
    default_port = DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT
    return BrokerAddress(parts.hostname, port or default_port, tls=tls)
