"""The agent's PKI folder: its own application certificate and the server certificates it trusts.

Layout of ``pki_dir``::

    own/cert.der          the agent's application instance certificate (created on first use)
    own/private/key.pem   its RSA private key, readable by the owner only
    trusted/              server certificates the agent accepts (DER or PEM, any file name)
    rejected/             server certificates the agent refused, for the operator to inspect

A server certificate is trusted when a file in ``trusted/`` contains the same certificate, compared
by the SHA-256 fingerprint of its DER encoding. Certificate authorities are not followed: each
server's own certificate has to be in the folder.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.errors import AdapterError

_LOGGER = logging.getLogger(__name__)

CERTIFICATE_VALIDITY_DAYS = 5 * 365
APPLICATION_NAME = "kooperant agent"
_CERTIFICATE_SUFFIXES = (".der", ".pem", ".crt", ".cer")
_DER_SEQUENCE = 0x30
_NOT_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class CertificateFileError(AdapterError):
    """Raised when a certificate or key file is missing, unreadable or invalid."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """Details an operator compares before trusting a certificate."""

    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str
    application_uri: str | None


@dataclass(frozen=True, slots=True)
class OwnCertificate:
    """The agent's application instance certificate, its key file and whether it is new."""

    certificate_path: Path
    private_key_path: Path
    certificate: x509.Certificate
    application_uri: str
    created: bool

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)


def fingerprint(certificate: x509.Certificate) -> str:
    """Return the SHA-256 fingerprint of the DER encoding as colon-separated hex pairs."""
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ":".join(digest[index : index + 2] for index in range(0, len(digest), 2)).upper()


def describe(certificate: x509.Certificate) -> CertificateInfo:
    """Return the subject, issuer, validity, fingerprint and application URI of ``certificate``."""
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint=fingerprint(certificate),
        application_uri=application_uri(certificate),
    )


def application_uri(certificate: x509.Certificate) -> str | None:
    """Return the first URI of the subjectAltName, which OPC UA uses as the application URI."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def parse_certificate(data: bytes, source: str) -> x509.Certificate:
    """Parse a DER or PEM certificate; ``source`` names where it came from in the error."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise CertificateFileError(Path(source), f"not a valid certificate: {error}") from error


def first_certificate(chain: bytes, source: str) -> x509.Certificate:
    """Parse the first of the DER certificates that follow each other in ``chain``.

    OPC UA servers may send their certificate followed by its issuers. Raises
    ``CertificateFileError`` naming ``source`` when the bytes are no DER certificate.
    """
    length = 0
    header = 2
    if len(chain) >= 2 and chain[0] == _DER_SEQUENCE:
        length = chain[1]
        if length & 0x80:
            # Long form: the low bits count the bytes of the length that follow.
            header = 2 + (length & 0x7F)
            length = int.from_bytes(chain[2:header], "big")
    return parse_certificate(chain[: header + length], source)


def der_bytes(certificate: x509.Certificate) -> bytes:
    """Return the DER encoding of ``certificate``."""
    return certificate.public_bytes(serialization.Encoding.DER)


def load_certificate(path: Path) -> x509.Certificate:
    """Read a DER or PEM certificate file. Raises ``CertificateFileError``."""
    return parse_certificate(_read(path, "certificate"), str(path))


def load_private_key(path: Path) -> PrivateKeyTypes:
    """Read an unencrypted PEM or DER private key file. Raises ``CertificateFileError``."""
    data = _read(path, "private key")
    loader = (
        serialization.load_pem_private_key
        if data.lstrip().startswith(b"-----BEGIN")
        else serialization.load_der_private_key
    )
    try:
        return loader(data, password=None)
    except TypeError as error:
        raise CertificateFileError(
            path, "the private key is protected by a password; store it without one"
        ) from error
    except ValueError as error:
        raise CertificateFileError(path, f"not a valid private key: {error}") from error


def check_key_pair(certificate_path: Path, private_key_path: Path) -> x509.Certificate:
    """Load a certificate and check that the key file contains its private key; return it.

    Raises ``CertificateFileError`` naming the file that is missing, unreadable or invalid, or
    the key file when the two do not belong together.
    """
    certificate = load_certificate(certificate_path)
    key = load_private_key(private_key_path)
    if _public_key_bytes(key.public_key()) != _public_key_bytes(certificate.public_key()):
        problem = f"the private key does not belong to the certificate {certificate_path}"
        raise CertificateFileError(private_key_path, problem)
    return certificate


def _public_key_bytes(key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise CertificateFileError(path, f"{what} file not found") from error
    except OSError as error:
        raise CertificateFileError(
            path, f"cannot read the {what} file: {error.strerror or error}"
        ) from error


class Pki:
    """The folders of one ``pki_dir``; nothing is created until a method needs it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.certificate_path = folder / "own" / "cert.der"
        self.private_key_path = folder / "own" / "private" / "key.pem"
        self.trusted_dir = folder / "trusted"
        self.rejected_dir = folder / "rejected"

    def own_certificate(self, hostname: str | None = None) -> OwnCertificate:
        """Return the agent's certificate, creating it and its key on first use.

        A new certificate is self-signed, RSA 2048 with SHA-256, valid for five years, with the
        application URI ``urn:HOST:kooperant:agent`` and the host name in its subjectAltName.
        Raises ``CertificateFileError`` when only one of the two files exists or one is invalid.
        """
        certificate_exists = self.certificate_path.exists()
        key_exists = self.private_key_path.exists()
        if certificate_exists and key_exists:
            return self._load_own_certificate()
        if certificate_exists or key_exists:
            present, missing = (
                (self.certificate_path, self.private_key_path)
                if certificate_exists
                else (self.private_key_path, self.certificate_path)
            )
            raise CertificateFileError(
                missing,
                f"file not found, but {present} exists; restore the missing file, or delete "
                "both so that the agent creates a new certificate, which the servers must then "
                "trust again",
            )
        return self._create_own_certificate(hostname or socket.gethostname())

    def _load_own_certificate(self) -> OwnCertificate:
        certificate = check_key_pair(self.certificate_path, self.private_key_path)
        if certificate.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
            raise CertificateFileError(
                self.certificate_path,
                f"the agent's certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
                "delete it and its key so that the agent creates a new one, then trust the new "
                "one on the servers",
            )
        uri = application_uri(certificate)
        if uri is None:
            raise CertificateFileError(
                self.certificate_path,
                "the certificate has no application URI in its subjectAltName; delete it and "
                "its key so that the agent creates a new one",
            )
        return OwnCertificate(
            self.certificate_path, self.private_key_path, certificate, uri, created=False
        )

    def _create_own_certificate(self, hostname: str) -> OwnCertificate:
        uri = f"urn:{hostname}:kooperant:agent"
        key = cert_gen.generate_private_key()
        certificate = cert_gen.generate_self_signed_app_certificate(
            key,
            f"{APPLICATION_NAME}@{hostname}",
            {"organizationName": "kooperant"},
            [x509.UniformResourceIdentifier(uri), x509.DNSName(hostname)],
            extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
            days=CERTIFICATE_VALIDITY_DAYS,
        )
        try:
            _write_private(self.private_key_path, _private_key_pem(key))
            _write_private(
                self.certificate_path, certificate.public_bytes(serialization.Encoding.DER)
            )
        except OSError as error:
            path = Path(error.filename) if error.filename else self.folder
            raise CertificateFileError(
                path, f"cannot create the agent's certificate: {error.strerror or error}"
            ) from error
        own = OwnCertificate(
            self.certificate_path, self.private_key_path, certificate, uri, created=True
        )
        _LOGGER.info(
            "created the agent's OPC UA application certificate %s (SHA-256 %s); servers must "
            "trust it before they accept secured connections",
            own.certificate_path,
            own.fingerprint,
        )
        return own

    def trusted_certificates(self) -> list[tuple[Path, x509.Certificate]]:
        """Return the readable certificates of ``trusted/``; other files are logged and skipped."""
        if not self.trusted_dir.is_dir():
            return []
        found = []
        for path in sorted(self.trusted_dir.iterdir()):
            if path.suffix.lower() not in _CERTIFICATE_SUFFIXES:
                continue
            try:
                found.append((path, load_certificate(path)))
            except CertificateFileError as error:
                _LOGGER.warning("skipping trusted certificate file: %s", error)
        return found

    def trusted_path(self, certificate: x509.Certificate) -> Path | None:
        """Return the file in ``trusted/`` that contains ``certificate``, or None."""
        wanted = fingerprint(certificate)
        for path, trusted in self.trusted_certificates():
            if fingerprint(trusted) == wanted:
                return path
        return None

    def trust(self, certificate: x509.Certificate) -> Path:
        """Store ``certificate`` in ``trusted/`` (DER) and drop its copy from ``rejected/``."""
        existing = self.trusted_path(certificate)
        if existing is not None:
            return existing
        path = self.trusted_dir / certificate_file_name(certificate)
        _write_public(path, certificate.public_bytes(serialization.Encoding.DER))
        rejected_copy = self.rejected_dir / path.name
        rejected_copy.unlink(missing_ok=True)
        return path

    def reject(self, certificate: x509.Certificate) -> Path:
        """Store ``certificate`` in ``rejected/`` (DER) and return the file's path."""
        path = self.rejected_dir / certificate_file_name(certificate)
        _write_public(path, certificate.public_bytes(serialization.Encoding.DER))
        return path


def certificate_file_name(certificate: x509.Certificate) -> str:
    """Return ``COMMON-NAME [FINGERPRINT-START].der``, a name unique per certificate."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else "certificate"
    readable = _NOT_IN_FILE_NAME.sub("-", common_name).strip("-.")[:60] or "certificate"
    start = fingerprint(certificate).replace(":", "")[:16].lower()
    return f"{readable} [{start}].der"


def _private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file that only the owner may read and write (0600 on POSIX)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
