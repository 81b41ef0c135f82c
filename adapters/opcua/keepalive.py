"""Detecting a connection that stops responding without closing (a half-open link).

Two mechanisms bound the silence to ``keepalive_seconds``:

- asyncua 2.1's client watchdog reads ``Server/ServerStatus/State`` after each
  ``watchdog_intervall`` without a connection state change and gives the read the same interval
  as its time limit. A silent link therefore fails the read at most two intervals after the last
  response, so the interval is half of ``keepalive_seconds``. asyncua then calls the
  client's ``connection_lost_callback`` with the ``TimeoutError``. The watchdog also runs while
  the adapter polls.
- The subscription asks the server for a keep-alive message after three ``keepalive_seconds``
  without notifications, so that the server keeps the subscription and asyncua recreates one the
  server dropped. asyncua 2.1 recreates a subscription after 1.5 keep-alive periods without a
  message, 4.5 ``keepalive_seconds``, so on a silent link the watchdog reports first and the
  failed recreate, which asyncua logs as an error, does not happen.
"""

from __future__ import annotations

import math

from asyncua import ua

from adapters.errors import SourceUnavailableError
from adapters.opcua.settings import OpcUaSettings

KEEPALIVE_PERIODS = 3
# OPC UA Part 4 1.04, 5.13.2.2 (CreateSubscription): the lifetime count is at least three times
# the keep-alive count.
LIFETIME_PER_KEEPALIVE = 3
MAX_NOTIFICATIONS_PER_PUBLISH = 10_000


class KeepAliveTimeoutError(SourceUnavailableError):
    """Raised when a connected server stops responding without closing the connection."""


def watchdog_interval_seconds(settings: OpcUaSettings) -> float:
    """Return the asyncua ``watchdog_intervall`` that detects silence within keepalive_seconds."""
    return settings.keepalive_seconds / 2


def subscription_parameters(settings: OpcUaSettings) -> ua.CreateSubscriptionParameters:
    """Return subscription parameters with a keep-alive period of three ``keepalive_seconds``.

    Explicit counts replace asyncua's default, a keep-alive after 75 % of the session timeout,
    which servers such as node-opcua 2.180 revise, and asyncua then logs a warning.
    """
    interval_ms = settings.publishing_interval_ms
    keepalive_count = max(
        1, math.floor(KEEPALIVE_PERIODS * settings.keepalive_seconds * 1000 / interval_ms)
    )
    return ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=ua.Double(interval_ms),
        RequestedLifetimeCount=ua.UInt32(LIFETIME_PER_KEEPALIVE * keepalive_count),
        RequestedMaxKeepAliveCount=ua.UInt32(keepalive_count),
        MaxNotificationsPerPublish=ua.UInt32(MAX_NOTIFICATIONS_PER_PUBLISH),
        PublishingEnabled=True,
        Priority=ua.Byte(0),
    )
