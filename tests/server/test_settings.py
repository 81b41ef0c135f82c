"""``ServerSettings`` validation: each bad value is rejected with a message naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kooperant.i18n import use_language
from server.errors import InvalidSettingError
from server.mqtt_url import BrokerAddress, parse_broker_url
from server.settings import (
    DEFAULT_SESSION_EXPIRY_SECONDS,
    MAX_SESSION_EXPIRY_SECONDS,
    ServerSettings,
)

BROKER = "mqtt://127.0.0.1:1883"
TLS_BROKER = "mqtts://127.0.0.1:8883"


@pytest.fixture
def pem_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize(
    ("changes", "message_id", "shown"),
    [
        ({"broker_url": BROKER, "client_id": "bad id"}, "client_id_invalid", "'bad id'"),
        ({"broker_url": BROKER, "client_id": ""}, "client_id_invalid", "''"),
        ({"broker_url": BROKER, "client_id": "x" * 129}, "client_id_invalid", "--client-id"),
        (
            {"broker_url": BROKER, "client_id": "w1", "shared_group": "a/b"},
            "shared_group_invalid",
            "'a/b'",
        ),
        (
            {"broker_url": BROKER, "client_id": "w1", "shared_group": "+"},
            "shared_group_invalid",
            "--shared-group",
        ),
        (
            {"broker_url": BROKER, "shared_group": "g1"},
            "shared_group_needs_client_id",
            "--client-id",
        ),
        ({"client_id": "w1", "shared_group": "g1"}, "shared_group_embedded", "--broker"),
        ({"broker_url": BROKER, "session_expiry_seconds": 0}, "session_expiry_invalid", " 0 "),
        ({"broker_url": BROKER, "session_expiry_seconds": -5}, "session_expiry_invalid", "-5"),
        (
            {"broker_url": BROKER, "session_expiry_seconds": MAX_SESSION_EXPIRY_SECONDS + 1},
            "session_expiry_invalid",
            str(MAX_SESSION_EXPIRY_SECONDS + 1),
        ),
        ({"broker_url": BROKER, "mqtt_protocol": "4"}, "mqtt_protocol_invalid", "'4'"),
        ({"mqtt_protocol": "5"}, "embedded_broker_protocol", "--mqtt-protocol is 5"),
    ],
)
def test_settings_reject_bad_session_values(
    changes: dict[str, Any], message_id: str, shown: str
) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(**changes)

    assert raised.value.message_id == message_id
    assert shown in str(raised.value)


def test_settings_missing_tls_file(tmp_path: Path, pem_file: Path) -> None:
    missing = tmp_path / "client.key"

    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(
            broker_url=TLS_BROKER,
            broker_cert_file=pem_file,
            broker_key_file=missing,
        )

    assert raised.value.message_id == "broker_tls_file_missing"
    assert "--broker-key-file" in str(raised.value)
    assert str(missing) in str(raised.value)


def test_settings_tls_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(broker_url=TLS_BROKER, broker_ca_file=tmp_path)

    assert raised.value.message_id == "broker_tls_file_missing"
    assert "--broker-ca-file" in str(raised.value)


@pytest.mark.parametrize("broker_url", [BROKER, None])
def test_settings_tls_file_needs_mqtts(pem_file: Path, broker_url: str | None) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(broker_url=broker_url, broker_ca_file=pem_file)

    assert raised.value.message_id == "broker_tls_needs_mqtts"
    assert "--broker-ca-file" in str(raised.value)
    assert "mqtts://" in str(raised.value)


def test_settings_key_without_certificate(pem_file: Path) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(broker_url=TLS_BROKER, broker_key_file=pem_file)

    assert raised.value.message_id == "broker_key_without_cert"
    assert "--broker-cert-file" in str(raised.value)


def test_settings_tls_files_accepted(pem_file: Path) -> None:
    settings = ServerSettings(
        broker_url=TLS_BROKER,
        broker_ca_file=pem_file,
        broker_cert_file=pem_file,
        broker_key_file=pem_file,
        broker_key_password="secret-key-password",
    )

    assert settings.broker_ca_file == pem_file
    assert "secret-key-password" not in repr(settings)


def test_settings_protocol_defaults() -> None:
    assert ServerSettings(broker_url=BROKER).broker_protocol == "auto"
    assert ServerSettings(broker_url=BROKER, mqtt_protocol="5").broker_protocol == "5"
    assert ServerSettings().broker_protocol == "3.1.1"
    assert ServerSettings(broker_url=BROKER, mqtt_protocol="3.1.1").broker_protocol == "3.1.1"
    assert ServerSettings(mqtt_protocol="3.1.1").broker_protocol == "3.1.1"


def test_settings_session_defaults() -> None:
    settings = ServerSettings(broker_url=BROKER)

    assert settings.session_expiry_seconds == DEFAULT_SESSION_EXPIRY_SECONDS == 604_800
    assert settings.client_id is None
    assert settings.shared_group is None


def test_settings_shared_group_with_client_id() -> None:
    settings = ServerSettings(broker_url=BROKER, client_id="ingest-1", shared_group="kooperant")

    assert settings.shared_group == "kooperant"


def test_settings_password_without_username() -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(broker_url=BROKER, broker_password="s3cret")

    assert raised.value.message_id == "broker_password_without_username"
    with use_language("pl"):
        assert "--broker-username" in raised.value.localized()
    assert "s3cret" not in str(raised.value)


def test_settings_error_in_polish() -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(broker_url=BROKER, shared_group="g1")

    with use_language("pl"):
        text = raised.value.localized()
    assert "--client-id" in text
    assert "każdy proces" in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtts://broker.example", BrokerAddress("broker.example", 8883, tls=True)),
        ("mqtts://127.0.0.1:9883", BrokerAddress("127.0.0.1", 9883, tls=True)),
        ("mqtt://broker.example", BrokerAddress("broker.example", 1883, tls=False)),
    ],
)
def test_broker_url_tls_scheme(url: str, expected: BrokerAddress) -> None:
    address = parse_broker_url(url)

    assert address == expected
    assert address.url.startswith("mqtts://" if expected.tls else "mqtt://")
