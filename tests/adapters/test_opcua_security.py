"""Tests of OPC UA security: settings, the agent's certificate, secured sessions and failures.

Sessions run against in-process asyncua servers secured by ``tests.support.secure_server``. They
offer only the policies a test names and check the agent's certificate against a trusted folder
with asyncua's ``CertificateValidator``. So a session that succeeds used that policy and a
certificate the server trusts.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Server, ua
from asyncua.client.client import Client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from adapters.opcua import OpcUaAdapter, OpcUaSettings, ServerConfigurationError
from adapters.opcua.certificates import CertificateFileError, Pki, fingerprint, first_certificate
from adapters.opcua.connection import disconnect, make_client
from adapters.opcua.endpoints import server_certificates
from adapters.opcua.security import ClientSecurity, connect
from tests.support.machinery_server import MachineSpec, machinery_server
from tests.support.node_opcua_server import node_opcua_server
from tests.support.opcua_recording import Recorder, statuses, wait_until
from tests.support.secure_server import ServerSecurity, der, make_certificate, secure_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

POLICIES = {
    "Basic256Sha256": "Basic256Sha256",
    "Aes128_Sha256_RsaOaep": "Aes128Sha256RsaOaep",
    "Aes256_Sha256_RsaPss": "Aes256Sha256RsaPss",
}

NODE_MACHINES = (MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing"),)


def server_policy(policy: str, mode: str) -> ua.SecurityPolicyType:
    """Return asyncua's server-side name of a policy and mode, e.g. Basic256Sha256_Sign."""
    return ua.SecurityPolicyType[f"{POLICIES[policy]}_{mode}"]


def settings_for(url: str, **values: Any) -> OpcUaSettings:
    values.setdefault("security_policy", "Basic256Sha256")
    values.setdefault("security_mode", "SignAndEncrypt")
    return OpcUaSettings(url=url, **values)


def trust_both(server: Server, security: ServerSecurity, pki: Pki) -> None:
    """Make the agent trust the server's certificate, and the server the agent's."""
    assert security.certificate is not None
    pki.trust(security.certificate)
    security.trust_client(pki.own_certificate().certificate_path)


async def connect_client(settings: OpcUaSettings, folder: Path) -> Client:
    """Connect as the adapter does, with paths relative to ``folder``; the caller disconnects."""

    async def ignore_loss(error: Exception) -> None:
        del error

    client = make_client(settings, ignore_loss)
    try:
        await connect(client, ClientSecurity.from_settings(settings, lambda path: folder / path))
    except BaseException:
        await disconnect(client, settings)
        raise
    return client


async def connection_error(settings: OpcUaSettings, folder: Path) -> str:
    """Return the message of the ServerConfigurationError that connecting raises."""
    with pytest.raises(ServerConfigurationError) as raised:
        client = await connect_client(settings, folder)
        await disconnect(client, settings)
    return str(raised.value)


async def read_server_namespace(client: Client) -> list[str]:
    namespaces: list[str] = await client.get_namespace_array()
    return namespaces


# --- settings -------------------------------------------------------------------------------

SETTINGS_ERRORS = [
    (
        {"security_policy": "Basic128Rsa15", "security_mode": "Sign"},
        "invalid security_policy 'Basic128Rsa15': use one of None, Basic256Sha256, "
        "Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss",
    ),
    (
        {"security_policy": "Basic256Sha256", "security_mode": "Encrypt"},
        "invalid security_mode 'Encrypt': use one of None, Sign, SignAndEncrypt",
    ),
    (
        {"security_policy": "Basic256Sha256"},
        "security_policy Basic256Sha256 needs security_mode Sign or SignAndEncrypt; or set "
        "security_policy: None",
    ),
    (
        {"security_mode": "Sign"},
        "security_mode Sign needs a security_policy other than None, for example "
        "Basic256Sha256; or set security_mode: None",
    ),
    (
        {
            "security_policy": "Basic256Sha256",
            "security_mode": "Sign",
            "user_certificate": "user.der",
        },
        "set both user_certificate and user_private_key, or neither",
    ),
    (
        {
            "security_policy": "Basic256Sha256",
            "security_mode": "Sign",
            "user_certificate": "user.der",
            "user_private_key": "user.pem",
            "username": "operator",
            "password": "secret",
        },
        "set either username and password or user_certificate and user_private_key, not both",
    ),
    (
        {"user_certificate": "user.der", "user_private_key": "user.pem"},
        "a user_certificate login needs a secured channel: set security_policy and "
        "security_mode, for example Basic256Sha256 and SignAndEncrypt",
    ),
]


@pytest.mark.parametrize(("values", "message"), SETTINGS_ERRORS)
def test_settings_security_invalid(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        OpcUaSettings(url="opc.tcp://127.0.0.1:4840", **values)

    assert [error["msg"] for error in raised.value.errors()] == [f"Value error, {message}"]


def test_settings_security_defaults() -> None:
    settings = OpcUaSettings(url="opc.tcp://127.0.0.1:4840")

    assert settings.security_policy == "None"
    assert settings.security_mode == "None"
    assert settings.pki_dir == Path("pki")


def test_settings_paths_resolved_against_config(tmp_path: Path) -> None:
    settings = settings_for(
        "opc.tcp://127.0.0.1:4840",
        pki_dir="certs",
        user_certificate="users/op.der",
        user_private_key="/etc/kooperant/op.pem",
    )

    security = ClientSecurity.from_settings(settings, lambda path: tmp_path / path)

    assert security.pki.folder == tmp_path / "certs"
    assert security.user_certificate == tmp_path / "users" / "op.der"
    assert security.user_private_key == Path("/etc/kooperant/op.pem")


def test_example_security_keys_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "adapters" / "opcua.example.yaml"
    keys = ("security_policy", "security_mode", "pki_dir", "user_certificate", "user_private_key")
    lines = [
        line.replace("# ", "", 1)
        if line.strip().startswith(tuple(f"# {key}:" for key in keys))
        else line
        for line in example.read_text(encoding="utf-8").splitlines()
    ]
    entry = yaml.safe_load("\n".join(lines))["adapters"][0]
    del entry["type"], entry["name"]

    settings = OpcUaSettings(**entry)

    assert settings.security_policy == "Basic256Sha256"
    assert settings.security_mode == "SignAndEncrypt"
    assert settings.pki_dir == Path("pki")
    assert settings.user_certificate == Path("pki/user/cert.der")


# --- the agent's certificate --------------------------------------------------------------


def test_own_certificate_created_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki = Pki(tmp_path / "pki")
    caplog.set_level(logging.INFO, logger="adapters.opcua.certificates")

    created = pki.own_certificate(hostname="plant-pc")
    reused = pki.own_certificate(hostname="other-host")

    assert created.created
    assert not reused.created
    assert reused.fingerprint == created.fingerprint
    assert reused.application_uri == "urn:plant-pc:kooperant:agent"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert str(created.certificate_path) in messages[0]
    assert created.fingerprint in messages[0]


def test_own_certificate_contents(tmp_path: Path) -> None:
    own = Pki(tmp_path / "pki").own_certificate(hostname="plant-pc")
    certificate = x509.load_der_x509_certificate(own.certificate_path.read_bytes())
    key = serialization.load_pem_private_key(own.private_key_path.read_bytes(), password=None)

    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:plant-pc:kooperant:agent"
    ]
    assert names.get_values_for_type(x509.DNSName) == ["plant-pc"]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert timedelta(days=5 * 365) - timedelta(days=1) <= lifetime <= timedelta(days=5 * 366)
    assert certificate.not_valid_before_utc <= datetime.now(UTC)
    assert fingerprint(certificate) == own.fingerprint


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_own_certificate_owner_only(tmp_path: Path) -> None:
    own = Pki(tmp_path / "pki").own_certificate(hostname="plant-pc")

    assert stat.S_IMODE(own.private_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(own.certificate_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(own.private_key_path.parent.stat().st_mode) == 0o700


def test_own_certificate_missing_key(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    own = pki.own_certificate(hostname="plant-pc")
    own.private_key_path.unlink()

    with pytest.raises(CertificateFileError) as raised:
        pki.own_certificate()

    assert raised.value.path == own.private_key_path
    assert f"file not found, but {own.certificate_path} exists" in raised.value.problem


def test_own_certificate_invalid_file(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    own = pki.own_certificate(hostname="plant-pc")
    own.certificate_path.write_bytes(b"not a certificate")

    with pytest.raises(CertificateFileError) as raised:
        pki.own_certificate()

    assert raised.value.path == own.certificate_path
    assert raised.value.problem.startswith("not a valid certificate")


def test_own_certificate_foreign_key(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    own = pki.own_certificate(hostname="plant-pc")
    _, other_key = make_certificate("other", "urn:other", server=False)
    own.private_key_path.write_bytes(other_key)

    with pytest.raises(CertificateFileError) as raised:
        pki.own_certificate()

    assert raised.value.path == own.private_key_path
    assert raised.value.problem == (
        f"the private key does not belong to the certificate {own.certificate_path}"
    )


def test_own_certificate_expired(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    own = pki.own_certificate(hostname="plant-pc")
    key = serialization.load_pem_private_key(own.private_key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    expired = (
        x509.CertificateBuilder()
        .subject_name(own.certificate.subject)
        .issuer_name(own.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2021, 1, 1, tzinfo=UTC))
        .add_extension(
            own.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    own.certificate_path.write_bytes(der(expired))

    with pytest.raises(CertificateFileError) as raised:
        pki.own_certificate()

    assert raised.value.path == own.certificate_path
    assert raised.value.problem.startswith("the agent's certificate expired on 2021-01-01; ")


def test_first_certificate_of_chain() -> None:
    server, _ = make_certificate("server", "urn:server", server=True)
    issuer, _ = make_certificate("issuer", "urn:issuer", server=True)

    first = first_certificate(der(server) + der(issuer), "endpoint")

    assert first == server


def test_first_certificate_invalid_bytes() -> None:
    with pytest.raises(CertificateFileError) as raised:
        first_certificate(b"\x30\x03abc", "endpoint opc.tcp://127.0.0.1:4840")

    assert raised.value.path == Path("endpoint opc.tcp://127.0.0.1:4840")
    assert raised.value.problem.startswith("not a valid certificate")


def test_trusted_folder_matches_by_fingerprint(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    first, _ = make_certificate("server one", "urn:one", server=True)
    second, _ = make_certificate("server one", "urn:one", server=True)
    pki.trusted_dir.mkdir(parents=True)
    (pki.trusted_dir / "one.pem").write_bytes(first.public_bytes(serialization.Encoding.PEM))
    (pki.trusted_dir / "notes.txt").write_text("not a certificate")

    assert pki.trusted_path(first) == pki.trusted_dir / "one.pem"
    assert pki.trusted_path(second) is None


# --- secured sessions ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(POLICIES))
async def test_sign_and_encrypt_session(tmp_path: Path, policy: str) -> None:
    security = ServerSecurity(
        tmp_path / "server-trusted", policies=(server_policy(policy, "SignAndEncrypt"),)
    )
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        settings = settings_for(server.endpoint.geturl(), security_policy=policy)

        client = await connect_client(settings, tmp_path)
        try:
            namespaces = await read_server_namespace(client)
            used = client.security_policy
        finally:
            await disconnect(client, settings)

    assert namespaces[0] == "http://opcfoundation.org/UA/"
    assert used.URI.endswith(f"#{policy}")
    assert used.Mode == ua.MessageSecurityMode.SignAndEncrypt


async def test_sign_session(tmp_path: Path) -> None:
    security = ServerSecurity(
        tmp_path / "server-trusted", policies=(server_policy("Basic256Sha256", "Sign"),)
    )
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        settings = settings_for(server.endpoint.geturl(), security_mode="Sign")

        client = await connect_client(settings, tmp_path)
        try:
            namespaces = await read_server_namespace(client)
            mode = client.security_policy.Mode
        finally:
            await disconnect(client, settings)

    assert namespaces[0] == "http://opcfoundation.org/UA/"
    assert mode == ua.MessageSecurityMode.Sign


async def test_username_login_secured(tmp_path: Path) -> None:
    security = ServerSecurity(
        tmp_path / "server-trusted", anonymous=False, users={"operator": "s3cret"}
    )
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        settings = settings_for(server.endpoint.geturl(), username="operator", password="s3cret")

        client = await connect_client(settings, tmp_path)
        try:
            namespaces = await read_server_namespace(client)
        finally:
            await disconnect(client, settings)

    assert namespaces[0] == "http://opcfoundation.org/UA/"


def write_user_certificate(folder: Path) -> x509.Certificate:
    certificate, key = make_certificate("operator", "urn:kooperant:test:operator", server=False)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "operator.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "operator.key").write_bytes(key)
    return certificate


async def test_user_certificate_login(tmp_path: Path) -> None:
    user_certificate = write_user_certificate(tmp_path / "users")
    security = ServerSecurity(
        tmp_path / "server-trusted", anonymous=False, user_certificates=[user_certificate]
    )
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        settings = settings_for(
            server.endpoint.geturl(),
            user_certificate="users/operator.pem",
            user_private_key="users/operator.key",
        )

        client = await connect_client(settings, tmp_path)
        try:
            namespaces = await read_server_namespace(client)
        finally:
            await disconnect(client, settings)

    assert namespaces[0] == "http://opcfoundation.org/UA/"


async def test_user_certificate_not_listed(tmp_path: Path) -> None:
    write_user_certificate(tmp_path / "users")
    security = ServerSecurity(tmp_path / "server-trusted", anonymous=False)
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        url = server.endpoint.geturl()
        settings = settings_for(
            url, user_certificate="users/operator.pem", user_private_key="users/operator.key"
        )

        message = await connection_error(settings, tmp_path)

    assert message == (
        f"OPC UA server {url} rejected the user certificate "
        f"{tmp_path / 'users' / 'operator.pem'} (BadUserAccessDenied); the server must trust "
        "this certificate as a user and map it to a user with access; check the server's user "
        "certificate list"
    )


# --- failures -----------------------------------------------------------------------------


async def test_untrusted_server_certificate_rejected(tmp_path: Path) -> None:
    security = ServerSecurity(tmp_path / "server-trusted")
    pki = Pki(tmp_path / "pki")
    async with secure_server(security) as server:
        assert security.certificate is not None
        url = server.endpoint.geturl()
        message = await connection_error(settings_for(url), tmp_path)

    server_fingerprint = fingerprint(security.certificate)
    saved = (
        pki.rejected_dir
        / f"kooperant-test-server [{server_fingerprint.replace(':', '')[:16].lower()}].der"
    )
    assert message == (
        f"the certificate of OPC UA server {url} is not trusted (subject CN=kooperant test "
        f"server, SHA-256 {server_fingerprint}); it was saved to {saved}. Compare the "
        "fingerprint with the one the server shows, then run `kooperant agent trust "
        f"{url} --pki-dir {pki.folder}` or move the file to {pki.trusted_dir}"
    )
    assert saved.read_bytes() == der(security.certificate)
    assert not pki.trusted_dir.exists()


async def test_moved_rejected_certificate_trusted(tmp_path: Path) -> None:
    security = ServerSecurity(tmp_path / "server-trusted")
    pki = Pki(tmp_path / "pki")
    async with secure_server(security) as server:
        settings = settings_for(server.endpoint.geturl())
        await connection_error(settings, tmp_path)
        security.trust_client(pki.own_certificate().certificate_path)
        pki.trusted_dir.mkdir()
        for rejected in pki.rejected_dir.iterdir():
            rejected.rename(pki.trusted_dir / rejected.name)

        client = await connect_client(settings, tmp_path)
        await disconnect(client, settings)


async def test_agent_certificate_untrusted_by_server(tmp_path: Path) -> None:
    security = ServerSecurity(tmp_path / "server-trusted")
    pki = Pki(tmp_path / "pki")
    async with secure_server(security) as server:
        assert security.certificate is not None
        pki.trust(security.certificate)
        url = server.endpoint.geturl()
        message = await connection_error(settings_for(url), tmp_path)

    own = pki.own_certificate()
    assert message == (
        f"OPC UA server {url} rejected the agent's certificate (BadCertificateUntrusted); "
        f"trust the agent's certificate {own.certificate_path} (SHA-256 {own.fingerprint}) on "
        "the server, usually by moving it from the server's rejected certificates to its "
        "trusted ones"
    )


async def test_wrong_password_rejected(tmp_path: Path) -> None:
    security = ServerSecurity(
        tmp_path / "server-trusted", anonymous=False, users={"operator": "s3cret"}
    )
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        url = server.endpoint.geturl()
        settings = settings_for(url, username="operator", password="wrong")

        message = await connection_error(settings, tmp_path)

    assert message == (
        f"OPC UA server {url} rejected the user name 'operator' or its password "
        "(BadUserAccessDenied); check username and password in the adapter settings and the "
        "user on the server"
    )
    assert "wrong" not in message


async def test_anonymous_login_rejected(tmp_path: Path) -> None:
    security = ServerSecurity(tmp_path / "server-trusted", anonymous=False)
    async with secure_server(security) as server:
        trust_both(server, security, Pki(tmp_path / "pki"))
        url = server.endpoint.geturl()

        message = await connection_error(settings_for(url), tmp_path)

    assert message == (
        f"OPC UA server {url} rejected the anonymous login (BadUserAccessDenied); the server "
        "does not allow anonymous access; set username and password or user_certificate and "
        "user_private_key in the adapter settings"
    )


async def test_unsupported_policy_and_mode(tmp_path: Path) -> None:
    security = ServerSecurity(
        tmp_path / "server-trusted",
        policies=(
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
        ),
    )
    async with secure_server(security) as server:
        url = server.endpoint.geturl()
        settings = settings_for(url, security_policy="Aes256_Sha256_RsaPss", security_mode="Sign")

        message = await connection_error(settings, tmp_path)

    assert message == (
        f"OPC UA server {url} offers no endpoint with security_policy Aes256_Sha256_RsaPss and "
        "security_mode Sign; it offers Aes256_Sha256_RsaPss/SignAndEncrypt, "
        "Basic256Sha256/SignAndEncrypt. Set security_policy and security_mode to one of these"
    )


async def test_secured_server_rejects_none(tmp_path: Path) -> None:
    security = ServerSecurity(
        tmp_path / "server-trusted",
        policies=(ua.SecurityPolicyType.Basic256Sha256_Sign,),
    )
    async with secure_server(security) as server:
        url = server.endpoint.geturl()

        message = await connection_error(OpcUaSettings(url=url), tmp_path)

    assert message == (
        f"OPC UA server {url} offers no endpoint with security_policy None and security_mode "
        "None; it offers Basic256Sha256/Sign. Set security_policy and security_mode to one of "
        "these"
    )


async def test_missing_user_key_file(tmp_path: Path) -> None:
    write_user_certificate(tmp_path / "users")
    security = ServerSecurity(tmp_path / "server-trusted")
    async with secure_server(security) as server:
        url = server.endpoint.geturl()
        settings = settings_for(
            url, user_certificate="users/operator.pem", user_private_key="users/missing.key"
        )

        message = await connection_error(settings, tmp_path)

    assert message == (
        f"OPC UA adapter for {url}: {tmp_path / 'users' / 'missing.key'}: private key file "
        "not found"
    )


async def test_missing_agent_key_file(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    own = pki.own_certificate()
    own.private_key_path.unlink()
    security = ServerSecurity(tmp_path / "server-trusted")
    async with secure_server(security) as server:
        url = server.endpoint.geturl()

        message = await connection_error(settings_for(url), tmp_path)

    assert message.startswith(
        f"OPC UA adapter for {url}: {own.private_key_path}: file not found, but "
        f"{own.certificate_path} exists; restore the missing file"
    )


async def test_encrypted_user_key_rejected(tmp_path: Path) -> None:
    write_user_certificate(tmp_path / "users")
    key_path = tmp_path / "users" / "operator.key"
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    security = ServerSecurity(tmp_path / "server-trusted")
    async with secure_server(security) as server:
        url = server.endpoint.geturl()
        settings = settings_for(
            url, user_certificate="users/operator.pem", user_private_key="users/operator.key"
        )

        message = await connection_error(settings, tmp_path)

    assert message == (
        f"OPC UA adapter for {url}: {key_path}: the private key is protected by a password; "
        "store it without one"
    )


# --- the adapter --------------------------------------------------------------------------


@pytest.fixture
async def adapters_in(tmp_path: Path) -> AsyncIterator[Callable[..., OpcUaAdapter]]:
    """A factory of adapters whose config folder is ``tmp_path``; all stopped after the test."""
    started: list[OpcUaAdapter] = []

    def make(settings: OpcUaSettings) -> OpcUaAdapter:
        recorder = Recorder()
        context = recorder.context.__class__(
            member=recorder.context.member,
            timezone=recorder.context.timezone,
            config_dir=tmp_path,
            notify_changed=recorder.context.notify_changed,
            clock=recorder.context.clock,
        )
        adapter = OpcUaAdapter("machines", settings, context)
        started.append(adapter)
        return adapter

    yield make
    for adapter in started:
        await adapter.stop()


@pytest.mark.nodesets
async def test_adapter_logs_untrusted_then_connects(
    tmp_path: Path,
    nodesets_dir: Path,
    adapters_in: Callable[..., OpcUaAdapter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    security = ServerSecurity(tmp_path / "server-trusted")
    caplog.set_level(logging.INFO, logger="adapters.opcua")
    async with machinery_server(nodesets_dir, before_start=security.apply) as server:
        settings = settings_for(
            server.endpoint, reconnect_min_seconds=0.1, reconnect_max_seconds=0.2
        )
        adapter = adapters_in(settings)
        await adapter.start()
        await wait_until(lambda: adapter.failed_attempts >= 3, 20.0)

        assert security.certificate is not None
        pki = Pki(tmp_path / "pki")
        pki.trust(security.certificate)
        security.trust_client(pki.own_certificate().certificate_path)
        await wait_until(lambda: len(adapter.collect()) == 2, 20.0)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    untrusted = [text for text in errors if "is not trusted" in text]
    assert len(untrusted) == 1
    assert f"the certificate of OPC UA server {server.endpoint} is not trusted" in untrusted[0]
    created = [text for text in caplog.messages if "created the agent's OPC UA" in text]
    assert len(created) == 1
    assert sorted(statuses(adapter)) == ["lathe-b2", "mill-a1"]


# --- node-opcua -----------------------------------------------------------------------------


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_secured_sessions(
    tmp_path: Path, adapters_in: Callable[..., OpcUaAdapter]
) -> None:
    pki = Pki(tmp_path / "pki")
    async with node_opcua_server(NODE_MACHINES, secure=True) as server:
        (offered,) = await server_certificates(server.endpoint, 10.0)
        pki.trust(offered.certificate)
        first = await connection_error(settings_for(server.endpoint), tmp_path)

        # node-opcua keeps an unknown client certificate in rejected/; trusting moves it.
        (rejected,) = (server.pki_dir / "rejected").iterdir()
        rejected.rename(server.pki_dir / "trusted" / "certs" / rejected.name)
        await server.reload_certificates()
        used = []
        for policy in POLICIES:
            settings = settings_for(server.endpoint, security_policy=policy)
            client = await connect_client(settings, tmp_path)
            try:
                namespaces = await read_server_namespace(client)
                used.append((client.security_policy.URI, client.security_policy.Mode))
            finally:
                await disconnect(client, settings)
            assert namespaces[0] == "http://opcfoundation.org/UA/"

        adapter = adapters_in(settings_for(server.endpoint, security_mode="Sign"))
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 1, 20.0)

    own = pki.own_certificate()
    assert first.startswith(
        f"OPC UA server {server.endpoint} closed the connection while the secured channel was "
        "being opened, as servers do when they do not trust the agent's certificate; "
    )
    assert f"trust the agent's certificate {own.certificate_path}" in first
    assert sorted(offered.offers) == sorted(
        f"{policy}/{mode}" for policy in POLICIES for mode in ("Sign", "SignAndEncrypt")
    )
    assert [uri.rsplit("#", 1)[1] for uri, _ in used] == list(POLICIES)
    assert {mode for _, mode in used} == {ua.MessageSecurityMode.SignAndEncrypt}
    assert statuses(adapter)["mill-a1"].name == "Mill-A1"
