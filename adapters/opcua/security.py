"""Connecting the adapter's client with the configured security policy, mode and identity.

``connect`` replaces ``Client.connect``. With a security policy other than None it first reads the
server's endpoints over an unsecured channel and picks the endpoint with the configured policy and
mode. It accepts the endpoint's certificate only when it is in the PKI folder's ``trusted/`` (see
``certificates``). Only then does it open the secured channel, and asyncua checks in CreateSession
that the server signs with that certificate's key.

Problems that an operator has to fix raise ``ServerConfigurationError`` with what to do: an
untrusted server certificate, an agent certificate the server rejects, a rejected identity, no
endpoint with the configured policy and mode, and missing or invalid certificate files. Other
errors of asyncua pass through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509

from adapters.opcua.certificates import (
    CertificateFileError,
    OwnCertificate,
    Pki,
    check_key_pair,
    der_bytes,
    describe,
    first_certificate,
)
from adapters.opcua.machinery import ServerConfigurationError
from adapters.opcua.settings import OpcUaSettings

_LOGGER = logging.getLogger(__name__)

POLICY_CLASSES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_POLICY_URI_PREFIX = "http://opcfoundation.org/UA/SecurityPolicy#"

# Status codes with which a server turns down the agent's application certificate.
AGENT_CERTIFICATE_REJECTED = frozenset(
    {
        StatusCodes.BadSecurityChecksFailed,
        StatusCodes.BadCertificateUntrusted,
        StatusCodes.BadCertificateInvalid,
        StatusCodes.BadCertificateUriInvalid,
        StatusCodes.BadCertificateTimeInvalid,
        StatusCodes.BadCertificateUseNotAllowed,
        StatusCodes.BadCertificateRevoked,
        StatusCodes.BadCertificateHostNameInvalid,
        StatusCodes.BadCertificateIssuerRevoked,
        StatusCodes.BadCertificateIssuerTimeInvalid,
        StatusCodes.BadCertificateIssuerUseNotAllowed,
        StatusCodes.BadCertificateRevocationUnknown,
        StatusCodes.BadCertificateIssuerRevocationUnknown,
    }
)
IDENTITY_REJECTED = frozenset(
    {
        StatusCodes.BadUserAccessDenied,
        StatusCodes.BadIdentityTokenInvalid,
        StatusCodes.BadIdentityTokenRejected,
    }
)
CHANNEL_REJECTED = frozenset(
    {StatusCodes.BadSecurityPolicyRejected, StatusCodes.BadSecurityModeRejected}
)


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """The security settings of one adapter with every path resolved."""

    url: str
    policy: str
    mode: str
    pki: Pki
    username: str | None
    user_certificate: Path | None
    user_private_key: Path | None

    @classmethod
    def from_settings(
        cls, settings: OpcUaSettings, resolve_path: Callable[[Path], Path]
    ) -> ClientSecurity:
        """Take the settings' security keys; ``resolve_path`` anchors relative paths."""
        return cls(
            url=settings.url,
            policy=settings.security_policy,
            mode=settings.security_mode,
            pki=Pki(resolve_path(settings.pki_dir)),
            username=settings.username,
            user_certificate=_resolve(settings.user_certificate, resolve_path),
            user_private_key=_resolve(settings.user_private_key, resolve_path),
        )

    @property
    def secured(self) -> bool:
        return self.policy != "None"


def _resolve(path: Path | None, resolve_path: Callable[[Path], Path]) -> Path | None:
    return None if path is None else resolve_path(path)


def policy_name(policy_uri: str) -> str:
    """Return the short name of a security policy URI, e.g. ``Basic256Sha256``."""
    return policy_uri.removeprefix(_POLICY_URI_PREFIX)


def mode_name(mode: ua.MessageSecurityMode) -> str:
    """Return ``None``, ``Sign`` or ``SignAndEncrypt``; ``Invalid`` for the value 0."""
    return mode.name.removesuffix("_")


def security_mode(name: str) -> ua.MessageSecurityMode:
    """Return the asyncua mode for a ``security_mode`` setting."""
    return ua.MessageSecurityMode.None_ if name == "None" else ua.MessageSecurityMode[name]


def offer_name(endpoint: ua.EndpointDescription) -> str:
    """Return the endpoint's security as ``policy/mode``, e.g. ``Basic256Sha256/Sign``."""
    return f"{policy_name(endpoint.SecurityPolicyUri)}/{mode_name(endpoint.SecurityMode)}"


def offered_text(endpoints: list[ua.EndpointDescription]) -> str:
    """Return the distinct ``policy/mode`` pairs of ``endpoints``, comma separated."""
    return ", ".join(sorted({offer_name(endpoint) for endpoint in endpoints})) or "none"


def endpoint_certificate(endpoint: ua.EndpointDescription) -> x509.Certificate | None:
    """Return the server's own certificate of an endpoint (the first of a chain), or None."""
    if not endpoint.ServerCertificate:
        return None
    return first_certificate(endpoint.ServerCertificate, f"endpoint {endpoint.EndpointUrl}")


async def connect(client: Client, security: ClientSecurity) -> None:
    """Connect ``client`` with ``security``; raises ``ServerConfigurationError`` (see above)."""
    own = None
    certificate, key = security.user_certificate, security.user_private_key
    try:
        if certificate is not None and key is not None:
            await _load_user_certificate(client, certificate, key)
        if security.secured:
            own = security.pki.own_certificate()
    except CertificateFileError as error:
        raise ServerConfigurationError(f"OPC UA adapter for {security.url}: {error}") from error

    if own is not None:
        await _set_security(client, security, own)
    try:
        await client.connect()
    except UaStatusCodeError as error:
        raise await _convert(client, security, own, error) from error
    except ConnectionError as error:
        # node-opcua 2.180 responds to an untrusted client certificate in OpenSecureChannel with an
        # ERR message (BadSecurityChecksFailed), which asyncua 2.1 turns into a lost connection
        # without the code. The endpoints were read just before, so the server is reachable.
        # NOTE: a server that stops between the two requests is reported the same way.
        if own is None or isinstance(error, ConnectionRefusedError):
            raise
        raise ServerConfigurationError(
            f"OPC UA server {security.url} closed the connection while the secured channel was "
            "being opened, as servers do when they do not trust the agent's certificate; "
            f"{_trust_agent_advice(own)}"
        ) from error
    except UaError as error:
        # asyncua 2.1 raises a plain UaError with this text from CreateSession when the server
        # lists no endpoint with the client's policy and mode, e.g. None on a secured server.
        if not str(error).startswith("No matching endpoints"):
            raise
        raise _no_endpoint_error(security, await _offered_endpoints(client)) from error


async def _load_user_certificate(client: Client, certificate: Path, private_key: Path) -> None:
    check_key_pair(certificate, private_key)
    await client.load_client_certificate(str(certificate), _extension(certificate))
    await client.load_private_key(private_key, extension=_extension(private_key))


def _extension(path: Path) -> str:
    """Return ``pem`` or ``der`` by content; asyncua would go by the file name's suffix."""
    with path.open("rb") as file:
        return "pem" if file.read(64).lstrip().startswith(b"-----BEGIN") else "der"


async def _set_security(client: Client, security: ClientSecurity, own: OwnCertificate) -> None:
    """Select the endpoint, check its certificate against ``trusted/`` and set up the channel."""
    client.application_uri = own.application_uri
    endpoints = await client.connect_and_get_server_endpoints()
    policy_uri = POLICY_CLASSES[security.policy].URI
    mode = security_mode(security.mode)
    matching = [
        endpoint
        for endpoint in endpoints
        if endpoint.SecurityPolicyUri == policy_uri and endpoint.SecurityMode == mode
    ]
    if not matching:
        raise _no_endpoint_error(security, offered_text(endpoints))

    try:
        server_certificate = endpoint_certificate(matching[0])
    except CertificateFileError as error:
        raise ServerConfigurationError(
            f"OPC UA server {security.url} sends an invalid certificate with its "
            f"{security.policy}/{security.mode} endpoint ({error.problem}); check the "
            "certificate configured on the server"
        ) from error
    if server_certificate is None:
        raise ServerConfigurationError(
            f"OPC UA server {security.url} sends no certificate with its {security.policy}/"
            f"{security.mode} endpoint; configure a certificate on the server"
        )
    _check_trusted(security, server_certificate)

    await client.set_security(
        POLICY_CLASSES[security.policy],
        str(own.certificate_path),
        str(own.private_key_path),
        server_certificate=der_bytes(server_certificate),
        mode=mode,
    )


def _no_endpoint_error(security: ClientSecurity, offered: str) -> ServerConfigurationError:
    return ServerConfigurationError(
        f"OPC UA server {security.url} offers no endpoint with security_policy "
        f"{security.policy} and security_mode {security.mode}; it offers {offered}. Set "
        "security_policy and security_mode to one of these"
    )


def _check_trusted(security: ClientSecurity, certificate: x509.Certificate) -> None:
    if security.pki.trusted_path(certificate) is not None:
        return

    info = describe(certificate)
    try:
        saved = f"it was saved to {security.pki.reject(certificate)}"
    except OSError as error:
        saved = f"saving it to {security.pki.rejected_dir} failed: {error.strerror or error}"
    raise ServerConfigurationError(
        f"the certificate of OPC UA server {security.url} is not trusted (subject {info.subject}, "
        f"SHA-256 {info.fingerprint}); {saved}. Compare the fingerprint with the one the "
        f"server shows, then run `kooperant agent trust {security.url} --pki-dir "
        f"{security.pki.folder}` or move the file to {security.pki.trusted_dir}"
    )


async def _convert(
    client: Client,
    security: ClientSecurity,
    own: OwnCertificate | None,
    error: UaStatusCodeError,
) -> Exception:
    """Word a rejected connection as what the operator has to change, or return ``error``."""
    name = ua.StatusCode(error.code).name
    if own is not None and error.code in AGENT_CERTIFICATE_REJECTED:
        return ServerConfigurationError(
            f"OPC UA server {security.url} rejected the agent's certificate ({name}); "
            f"{_trust_agent_advice(own)}"
        )
    if error.code in IDENTITY_REJECTED:
        return ServerConfigurationError(
            f"OPC UA server {security.url} rejected the {_identity_text(security)} ({name}); "
            f"{_identity_advice(security)}"
        )
    if error.code in CHANNEL_REJECTED:
        offered = await _offered_endpoints(client)
        return ServerConfigurationError(
            f"OPC UA server {security.url} rejected security_policy {security.policy} with "
            f"security_mode {security.mode} ({name}); it offers {offered}. Set "
            "security_policy and security_mode to one of these"
        )
    return error


def _trust_agent_advice(own: OwnCertificate) -> str:
    return (
        f"trust the agent's certificate {own.certificate_path} (SHA-256 {own.fingerprint}) on "
        "the server, usually by moving it from the server's rejected certificates to its "
        "trusted ones"
    )


def _identity_text(security: ClientSecurity) -> str:
    if security.user_certificate is not None:
        return f"user certificate {security.user_certificate}"
    if security.username is not None:
        return f"user name {security.username!r} or its password"
    return "anonymous login"


def _identity_advice(security: ClientSecurity) -> str:
    if security.user_certificate is not None:
        return (
            "the server must trust this certificate as a user and map it to a user with access; "
            "check the server's user certificate list"
        )
    if security.username is not None:
        return "check username and password in the adapter settings and the user on the server"
    return (
        "the server does not allow anonymous access; set username and password or "
        "user_certificate and user_private_key in the adapter settings"
    )


async def _offered_endpoints(client: Client) -> str:
    try:
        return offered_text(await client.connect_and_get_server_endpoints())
    except (OSError, TimeoutError, UaError) as error:
        _LOGGER.debug("reading the endpoints of %s failed: %r", client.server_url.geturl(), error)
        return "an unknown set of endpoints (reading them failed)"
