"""MqttSession over TLS: an own Mosquitto with a TLS listener and certificates made per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kooperant.mqtt import ConnectFailed, MqttSession, TlsSettings, TlsSettingsError
from kooperant.mqtt.tls import build_ssl_context
from tests.mqtt.conftest import make_broker, options_for, receive
from tests.support.certificates import CertificateAuthority
from tests.support.mosquitto import OwnMosquitto, TlsFiles


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "certs")


def tls_broker(
    folder: Path, authority: CertificateAuthority, *, require_certificate: bool = False
) -> OwnMosquitto:
    server = authority.issue_server()
    files = TlsFiles(
        ca_file=authority.cert_file,
        cert_file=server.cert_file,
        key_file=server.key_file,
        require_certificate=require_certificate,
    )
    return make_broker(folder, tls=files)


@pytest.fixture
def broker(tmp_path: Path, authority: CertificateAuthority) -> Iterator[OwnMosquitto]:
    broker = tls_broker(tmp_path / "broker", authority)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def client_broker(tmp_path: Path, authority: CertificateAuthority) -> Iterator[OwnMosquitto]:
    broker = tls_broker(tmp_path / "broker", authority, require_certificate=True)
    broker.start()
    yield broker
    broker.stop()


async def test_tls_connects_with_ca_file(
    broker: OwnMosquitto, authority: CertificateAuthority
) -> None:
    assert broker.tls_port is not None
    tls = TlsSettings(ca_file=authority.cert_file)

    async with MqttSession(options_for(broker.tls_port, tls=tls)) as session:
        await session.subscribe(["t/#"])
        await session.publish("t/secure", b"over tls")
        (message,) = await receive(session, 1)

    assert message.payload == b"over tls"


async def test_tls_localhost_name_accepted(
    broker: OwnMosquitto, authority: CertificateAuthority
) -> None:
    assert broker.tls_port is not None
    options = options_for(broker.tls_port, tls=TlsSettings(ca_file=authority.cert_file))
    options = replace(options, host="localhost")

    async with MqttSession(options) as session:
        await session.publish("t/name", b"checked")


async def test_tls_wrong_ca_fails(
    broker: OwnMosquitto, tmp_path: Path, authority: CertificateAuthority
) -> None:
    assert broker.tls_port is not None
    stranger = CertificateAuthority.create(tmp_path / "other", name="other-ca")
    options = options_for(broker.tls_port, tls=TlsSettings(ca_file=stranger.cert_file))

    with pytest.raises(
        ConnectFailed, match="self-signed certificate in certificate chain"
    ) as raised:
        async with MqttSession(options):
            pass

    assert f"127.0.0.1:{broker.tls_port}" in str(raised.value)
    assert "server certificate was not accepted" in str(raised.value)


async def test_tls_expired_server_certificate(tmp_path: Path) -> None:
    authority = CertificateAuthority.create(tmp_path / "certs")
    server = authority.issue_server("expired-server", expired=True)
    files = TlsFiles(authority.cert_file, server.cert_file, server.key_file)
    broker = make_broker(tmp_path / "broker", tls=files)
    broker.start()
    try:
        assert broker.tls_port is not None
        options = options_for(broker.tls_port, tls=TlsSettings(ca_file=authority.cert_file))

        with pytest.raises(ConnectFailed, match="expired"):
            async with MqttSession(options):
                pass
    finally:
        broker.stop()


async def test_tls_client_certificate_accepted(
    client_broker: OwnMosquitto, authority: CertificateAuthority
) -> None:
    assert client_broker.tls_port is not None
    client = authority.issue_client("acme", key_password="key-secret")
    tls = TlsSettings(
        ca_file=authority.cert_file,
        cert_file=client.cert_file,
        key_file=client.key_file,
        key_password="key-secret",
    )

    async with MqttSession(options_for(client_broker.tls_port, tls=tls)) as session:
        await session.publish("t/client", b"with certificate")


async def test_tls_client_certificate_missing(
    client_broker: OwnMosquitto, authority: CertificateAuthority
) -> None:
    assert client_broker.tls_port is not None
    tls = TlsSettings(ca_file=authority.cert_file)

    with pytest.raises(ConnectFailed, match=f"127.0.0.1:{client_broker.tls_port}") as raised:
        async with MqttSession(options_for(client_broker.tls_port, tls=tls)):
            pass

    assert "rejected client certificate" in str(raised.value)


async def test_tls_client_certificate_wrong_ca(
    client_broker: OwnMosquitto, authority: CertificateAuthority, tmp_path: Path
) -> None:
    assert client_broker.tls_port is not None
    stranger = CertificateAuthority.create(tmp_path / "other", name="other-ca")
    client = stranger.issue_client("intruder")
    tls = TlsSettings(
        ca_file=authority.cert_file, cert_file=client.cert_file, key_file=client.key_file
    )

    with pytest.raises(ConnectFailed):
        async with MqttSession(options_for(client_broker.tls_port, tls=tls)):
            pass


async def test_tls_expired_client_certificate(
    client_broker: OwnMosquitto, authority: CertificateAuthority
) -> None:
    assert client_broker.tls_port is not None
    client = authority.issue_client("expired-member", expired=True)
    tls = TlsSettings(
        ca_file=authority.cert_file, cert_file=client.cert_file, key_file=client.key_file
    )

    with pytest.raises(ConnectFailed, match=f"127.0.0.1:{client_broker.tls_port}"):
        async with MqttSession(options_for(client_broker.tls_port, tls=tls)):
            pass


def test_tls_missing_key_file(authority: CertificateAuthority, tmp_path: Path) -> None:
    client = authority.issue_client("acme")
    missing = tmp_path / "nowhere" / "acme.key"
    tls = TlsSettings(ca_file=authority.cert_file, cert_file=client.cert_file, key_file=missing)

    with pytest.raises(TlsSettingsError, match=f"TLS key file {missing} not found"):
        build_ssl_context(tls)


async def test_session_missing_ca_file(tmp_path: Path) -> None:
    missing = tmp_path / "ca.crt"
    options = options_for(1883, tls=TlsSettings(ca_file=missing))

    with pytest.raises(TlsSettingsError, match=f"TLS CA file {missing} not found"):
        async with MqttSession(options):
            pass


def test_tls_invalid_ca_file(tmp_path: Path) -> None:
    broken = tmp_path / "ca.crt"
    broken.write_text("not a certificate\n")

    with pytest.raises(TlsSettingsError, match=f"loading TLS CA file {broken} failed"):
        build_ssl_context(TlsSettings(ca_file=broken))


def test_tls_key_without_certificate(authority: CertificateAuthority) -> None:
    client = authority.issue_client("acme")

    with pytest.raises(TlsSettingsError, match="set without a certificate file"):
        build_ssl_context(TlsSettings(key_file=client.key_file))


def test_tls_key_of_other_certificate(authority: CertificateAuthority) -> None:
    first = authority.issue_client("first")
    second = authority.issue_client("second")
    tls = TlsSettings(cert_file=first.cert_file, key_file=second.key_file)

    with pytest.raises(TlsSettingsError, match=f"client certificate {first.cert_file}"):
        build_ssl_context(tls)


@pytest.mark.parametrize("password", [None, "wrong"])
def test_tls_encrypted_key_bad_password(
    authority: CertificateAuthority, password: str | None
) -> None:
    client = authority.issue_client("acme", key_password="k3y-pass-phrase")
    tls = TlsSettings(cert_file=client.cert_file, key_file=client.key_file, key_password=password)

    with pytest.raises(TlsSettingsError, match=str(client.key_file)) as raised:
        build_ssl_context(tls)

    hint = "set key_password" if password is None else "check the key password"
    assert hint in str(raised.value)
    assert "k3y-pass-phrase" not in str(raised.value)


def test_tls_settings_repr_hides_password(authority: CertificateAuthority) -> None:
    settings = TlsSettings(ca_file=authority.cert_file, key_password="very-secret")

    assert "very-secret" not in repr(settings)
