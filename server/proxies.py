"""Trusted reverse proxies: the peers whose X-Forwarded-For and X-Forwarded-Proto are trusted.

uvicorn's ``ProxyHeadersMiddleware`` does the rewriting. From a trusted peer it takes the scheme
of ``X-Forwarded-Proto`` and, as the client address, the last ``X-Forwarded-For`` entry that is
not itself a trusted proxy. Requests from every other peer keep their own address and scheme.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from server.errors import InvalidSettingError

ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The IPv6 prefix ::ffff:0:0/96 under which a dual-stack socket shows IPv4 peers.
_IPV4_MAPPED_PREFIX = int(ipaddress.IPv6Address("::ffff:0.0.0.0"))


def parse_trusted_proxy(value: str) -> ProxyNetwork:
    """Return the network of an IP address or CIDR network given with ``--trusted-proxy``.

    Raises ``InvalidSettingError`` for anything else, including a network with host bits set
    (``10.0.0.1/24``), because that is usually a typing error.
    """
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise InvalidSettingError("trusted_proxy_invalid", value=value) from error


def forwarded_allow_ips(networks: Iterable[ProxyNetwork]) -> list[str]:
    """Return uvicorn's ``forwarded_allow_ips`` for ``networks``.

    Each IPv4 network is also given in its IPv4-mapped IPv6 form, because a server listening on
    ``::`` reports an IPv4 proxy with an address such as ``::ffff:10.0.0.5``.
    """
    allowed: list[str] = []
    for network in networks:
        allowed.append(str(network))
        if isinstance(network, ipaddress.IPv4Network):
            mapped = ipaddress.IPv6Network(
                (_IPV4_MAPPED_PREFIX | int(network.network_address), 96 + network.prefixlen)
            )
            allowed.append(str(mapped))
    return allowed
