"""Security set-up of an in-process asyncua server for tests: certificate, policies and users.

``ServerSecurity.apply`` gives a ``Server`` a fresh self-signed certificate, enables the chosen
security policies, and checks clients the way a production server does: the client's application
certificate must be in ``trusted_clients`` (asyncua's ``CertificateValidator`` with a
``TrustStore``, reloaded on every session so a test can trust a certificate while the server
runs), and the identity must be anonymous (when allowed), a user name with its password, or a
user certificate from ``user_certificates``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kooperant.net import free_tcp_port

SERVER_URI = "urn:kooperant:test:secure-server"

ALL_SECURE_POLICIES = (
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
)


def make_certificate(common_name: str, uri: str, *, server: bool) -> tuple[x509.Certificate, bytes]:
    """Return a self-signed application certificate and its key as unencrypted PEM."""
    key = cert_gen.generate_private_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    certificate = cert_gen.generate_self_signed_app_certificate(
        key,
        common_name,
        {},
        [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        extended=[usage],
        days=30,
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate, pem


def der(certificate: x509.Certificate) -> bytes:
    """Return the DER encoding of ``certificate``."""
    return certificate.public_bytes(serialization.Encoding.DER)


class _Users:
    """User manager: a listed user certificate, a name and its password, or anonymous if allowed.

    asyncua 2.1 passes the channel's client certificate (DER) as ``certificate`` for every token
    type, so an unlisted certificate cannot be distinguished from an anonymous login: tests of user
    certificates turn ``anonymous`` off.
    """

    def __init__(self, security: ServerSecurity) -> None:
        self._security = security

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        listed = {der(user_certificate) for user_certificate in self._security.user_certificates}
        if certificate is not None and bytes(certificate) in listed:
            return User(role=UserRole.User)
        if username is not None:
            if self._security.users.get(username) == password:
                return User(role=UserRole.User, name=username)
            return None
        return User(role=UserRole.User) if self._security.anonymous else None


@dataclass
class ServerSecurity:
    """How a test server is secured; ``certificate`` is set by ``apply``."""

    trusted_clients: Path
    policies: tuple[ua.SecurityPolicyType, ...] = ALL_SECURE_POLICIES
    anonymous: bool = True
    users: dict[str, str] = field(default_factory=dict)
    user_certificates: list[x509.Certificate] = field(default_factory=list)
    certificate: x509.Certificate | None = None

    async def apply(self, server: Server) -> None:
        """Configure ``server``; call before it starts."""
        certificate, key = make_certificate("kooperant test server", SERVER_URI, server=True)
        self.certificate = certificate
        await server.set_application_uri(SERVER_URI)
        await server.load_certificate(der(certificate))
        await server.load_private_key(key, format="pem")
        server.set_security_policy(list(self.policies))
        server.set_identity_tokens(
            [ua.AnonymousIdentityToken, ua.UserNameIdentityToken, ua.X509IdentityToken]
        )
        server.iserver.set_user_manager(_Users(self))  # type: ignore[arg-type]

        self.trusted_clients.mkdir(parents=True, exist_ok=True)
        store = TrustStore([self.trusted_clients], [])
        options = (
            CertificateValidatorOptions.TIME_RANGE
            | CertificateValidatorOptions.URI
            | CertificateValidatorOptions.TRUSTED
            | CertificateValidatorOptions.PEER_CLIENT
        )
        validator = CertificateValidator(options, store)

        async def validate(
            client_certificate: x509.Certificate, description: ua.ApplicationDescription
        ) -> None:
            # TrustStore cannot be built from an empty folder, so nothing is trusted then.
            if not any(self.trusted_clients.iterdir()):
                raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)
            await store.load_trust()
            await validator.validate(client_certificate, description)

        server.set_certificate_validator(validate)

    def trust_client(self, certificate_path: Path) -> Path:
        """Copy a client certificate file into the server's trusted folder."""
        target = self.trusted_clients / certificate_path.name
        target.write_bytes(certificate_path.read_bytes())
        return target


@asynccontextmanager
async def secure_server(security: ServerSecurity) -> AsyncIterator[Server]:
    """Run an asyncua server without information model on 127.0.0.1, secured by ``security``."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{free_tcp_port()}")
    server.set_server_name("kooperant test secure server")
    await security.apply(server)
    async with server:
        yield server
