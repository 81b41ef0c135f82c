"""The OPC UA adapter's default subscription intervals against the machine state latency goal."""

from __future__ import annotations

from adapters.opcua.keepalive import subscription_parameters
from adapters.opcua.settings import OpcUaSettings

URL = "opc.tcp://127.0.0.1:4840"
# A state change should reach the aggregator's API within 1 s (p95). The agent, broker, ingest
# and one API poll took up to about 0.3 s of that on a loaded two-core machine (bench/latency.py),
# so the server's worst case, one sampling plus one publishing interval, gets at most half.
SERVER_SHARE_MS = 500.0
# Three keep-alive periods of the default keepalive_seconds (10 s), as at any publishing interval.
QUIET_KEEPALIVE_MS = 30_000.0


def test_default_intervals_within_latency_share() -> None:
    settings = OpcUaSettings(url=URL)

    assert settings.sampling_interval_ms + settings.publishing_interval_ms <= SERVER_SHARE_MS


def test_default_keepalive_period_independent_of_interval() -> None:
    parameters = subscription_parameters(OpcUaSettings(url=URL))

    keepalive_ms = parameters.RequestedMaxKeepAliveCount * parameters.RequestedPublishingInterval
    assert keepalive_ms == QUIET_KEEPALIVE_MS
