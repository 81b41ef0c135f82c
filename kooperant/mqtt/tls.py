"""The ``ssl.SSLContext`` of a broker connection, built from ``TlsSettings``."""

from __future__ import annotations

import ssl
from pathlib import Path

from kooperant.mqtt.errors import TlsSettingsError
from kooperant.mqtt.options import TlsSettings


def build_ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """Build a client context that verifies the server certificate and host name.

    Raises ``TlsSettingsError`` naming the file when a CA, certificate or key file is missing or
    cannot be loaded.
    """
    _check_files(settings)
    context = _context_with_ca(settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.cert_file is not None:
        _load_client_certificate(context, settings.cert_file, settings.key_file, settings)
    return context


def _check_files(settings: TlsSettings) -> None:
    if settings.key_file is not None and settings.cert_file is None:
        raise TlsSettingsError(
            f"TLS key file {settings.key_file} is set without a certificate file: "
            "set cert_file to the client certificate that goes with it"
        )
    named = [
        ("CA file", settings.ca_file),
        ("certificate file", settings.cert_file),
        ("key file", settings.key_file),
    ]
    for kind, path in named:
        if path is not None and not path.is_file():
            raise TlsSettingsError(f"TLS {kind} {path} not found")


def _context_with_ca(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise TlsSettingsError(
            f"loading TLS CA file {ca_file} failed: {_reason(error)} (expected PEM certificates)"
        ) from error


def _load_client_certificate(
    context: ssl.SSLContext, cert_file: Path, key_file: Path | None, settings: TlsSettings
) -> None:
    # Without a password, OpenSSL would prompt on the terminal for an encrypted key. An empty
    # password makes loading fail instead, with the hint below.
    password = settings.key_password if settings.key_password is not None else ""
    try:
        context.load_cert_chain(cert_file, key_file, password=password)
    except (OSError, ssl.SSLError) as error:
        key_text = key_file if key_file is not None else f"{cert_file} (no key file set)"
        hint = (
            "check the key password"
            if settings.key_password is not None
            else "set key_password if the key is encrypted"
        )
        raise TlsSettingsError(
            f"loading TLS client certificate {cert_file} with key {key_text} failed: "
            f"{_reason(error)}. Check that both are PEM files that belong together, or {hint}"
        ) from error


def _reason(error: Exception) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    return str(error)
