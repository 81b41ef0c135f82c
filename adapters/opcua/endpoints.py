"""Reading a server's endpoints and certificates over an unsecured channel, for ``agent trust``.

GetEndpoints is the one service an OPC UA server serves without security and without a session,
so it shows the server's certificate before anything is trusted. ``server_certificates`` groups
the endpoints by certificate. Every failure raises an ``EndpointsError`` with an
``EndpointsFailure`` code, so the command can word it in the user's language.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaError
from cryptography import x509

from adapters.errors import AdapterError
from adapters.opcua.browse import BrowseError, check_browse_url
from adapters.opcua.certificates import CertificateFileError, fingerprint
from adapters.opcua.security import endpoint_certificate, offer_name, offered_text
from kooperant.net import mask_url_credentials


class EndpointsFailure(StrEnum):
    """Reason why ``server_certificates`` returned no certificate."""

    INVALID_URL = "invalid_url"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    FAILED = "failed"
    NO_CERTIFICATE = "no_certificate"
    INVALID_CERTIFICATE = "invalid_certificate"


class EndpointsError(AdapterError):
    """Raised when a server's certificates cannot be read. Any password in ``url`` is masked."""

    def __init__(self, failure: EndpointsFailure, url: str, detail: str) -> None:
        self.failure = failure
        self.url = mask_url_credentials(url)
        self.detail = detail
        super().__init__(f"cannot read the endpoints of {self.url} ({failure.value}): {detail}")


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """One certificate of a server and the ``policy/mode`` pairs of the endpoints that use it."""

    certificate: x509.Certificate
    offers: tuple[str, ...]


async def server_certificates(url: str, timeout_seconds: float) -> list[ServerCertificate]:
    """Return each distinct certificate of the endpoints of ``url``, in endpoint order.

    Endpoints without security usually carry the certificate too. Raises ``EndpointsError``, with
    ``NO_CERTIFICATE`` when no endpoint has one.
    """
    try:
        check_browse_url(url)
    except BrowseError as error:
        raise EndpointsError(EndpointsFailure.INVALID_URL, url, error.detail) from error

    client = Client(url, timeout=timeout_seconds)
    try:
        # The connection timeout of asyncua covers each request, not the TCP connect.
        async with asyncio.timeout(timeout_seconds * 2):
            endpoints = await client.connect_and_get_server_endpoints()
    except TimeoutError as error:
        detail = f"no response within {timeout_seconds:g} s"
        raise EndpointsError(EndpointsFailure.TIMEOUT, url, detail) from error
    except OSError as error:
        detail = error.strerror or repr(error)
        raise EndpointsError(EndpointsFailure.UNREACHABLE, url, detail) from error
    except UaError as error:
        raise EndpointsError(EndpointsFailure.FAILED, url, str(error) or repr(error)) from error
    return _group_by_certificate(url, endpoints)


def _group_by_certificate(
    url: str, endpoints: list[ua.EndpointDescription]
) -> list[ServerCertificate]:
    certificates: dict[str, x509.Certificate] = {}
    offers: dict[str, list[str]] = {}
    for endpoint in endpoints:
        try:
            certificate = endpoint_certificate(endpoint)
        except CertificateFileError as error:
            raise EndpointsError(
                EndpointsFailure.INVALID_CERTIFICATE, url, error.problem
            ) from error
        if certificate is None:
            continue
        key = fingerprint(certificate)
        certificates.setdefault(key, certificate)
        offer = offer_name(endpoint)
        if offer not in offers.setdefault(key, []):
            offers[key].append(offer)

    if not certificates:
        raise EndpointsError(EndpointsFailure.NO_CERTIFICATE, url, offered_text(endpoints))
    return [ServerCertificate(certificates[key], tuple(offers[key])) for key in certificates]
