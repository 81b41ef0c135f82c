"""Certificates made for a test: a CA, server and client certificates, written as PEM files.

``CertificateAuthority.create(folder)`` makes a self-signed CA. ``issue_server`` makes a server
certificate valid for ``127.0.0.1`` and ``localhost`` (subject alternative names IP and DNS);
``issue_client`` makes a client certificate with a given common name. For negative tests,
``expired=True`` makes a certificate whose validity ended yesterday, and a certificate issued by a
second ``CertificateAuthority`` is signed by a CA the broker or client does not trust. Keys are
ECDSA P-256, which is quick to generate and which OpenSSL (and so Mosquitto) accepts.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class CertificateFiles:
    """The PEM files of one issued certificate and its private key."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA that signs the certificates it issues. Its own is ``cert_file``."""

    folder: Path
    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def cert_file(self) -> Path:
        return self.folder / f"{self.name}.crt"

    @classmethod
    def create(cls, folder: Path, name: str = "test-ca") -> CertificateAuthority:
        """Make a CA valid for 30 days from now and write its certificate to ``folder/name.crt``."""
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kooperant {name}")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        authority = cls(folder=folder, name=name, key=key, certificate=certificate)
        authority.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return authority

    def issue_server(
        self, name: str = "server", *, expired: bool = False, key_password: str | None = None
    ) -> CertificateFiles:
        """Issue a server certificate for ``127.0.0.1`` and ``localhost``."""
        names: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]
        return self._issue(
            name,
            common_name="localhost",
            alternative_names=names,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            expired=expired,
            key_password=key_password,
        )

    def issue_client(
        self, common_name: str, *, expired: bool = False, key_password: str | None = None
    ) -> CertificateFiles:
        """Issue a client certificate with ``common_name``, written as ``client-{common_name}``."""
        return self._issue(
            f"client-{common_name}",
            common_name=common_name,
            alternative_names=[],
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            expired=expired,
            key_password=key_password,
        )

    def _issue(
        self,
        file_name: str,
        *,
        common_name: str,
        alternative_names: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        expired: bool,
        key_password: str | None,
    ) -> CertificateFiles:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        if expired:
            not_before, not_after = now - 2 * VALIDITY, now - timedelta(days=1)
        else:
            not_before, not_after = now - timedelta(minutes=5), now + VALIDITY
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if alternative_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alternative_names), critical=False
            )
        certificate = builder.sign(self.key, hashes.SHA256())

        files = CertificateFiles(
            cert_file=self.folder / f"{file_name}.crt", key_file=self.folder / f"{file_name}.key"
        )
        files.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        files.key_file.write_bytes(_private_key_pem(key, key_password))
        return files


def _private_key_pem(key: ec.EllipticCurvePrivateKey, password: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
    )
