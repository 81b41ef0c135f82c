"""OPC UA adapter: machine states from servers that implement OPC 40001 Machinery.

``adapter`` runs the connection and follows states, ``machinery`` reads the address space and
``settings`` validates the config section. ``limits`` reads the server's operation limits and
batches reads within them, and ``monitoring`` creates monitored items with the data change
filter. ``keepalive`` detects a connection that stops responding, ``readings`` assesses each
value's status and timestamps, ``tracking`` keeps the machines and their statuses, ``health``
keeps the connection state and counters, and ``asyncua_logs`` demotes asyncua's repeated records
about a connection that is already gone. ``security`` connects with the configured security
policy, mode and identity, and ``certificates`` keeps the agent's certificate and the trusted
server certificates. ``models`` finds machines of the companion models and of the explicit node
mapping. Reconnect attempts are spaced by ``kooperant.backoff``.

Exceptions: ``ServerConfigurationError`` (a subclass of ``SourceUnavailableError``) for a server
that responds but lacks every supported model, rejects the credentials or the agent's
certificate, offers no endpoint with the configured security, or has a certificate the agent does
not trust, and for missing or invalid certificate files. Every other failure is a
``SourceUnavailableError`` with the asyncua error as its cause. ``KeepAliveTimeoutError``, also a
``SourceUnavailableError``, is raised inside the adapter when a connected server stops responding.
"""

from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.machinery import ServerConfigurationError
from adapters.opcua.settings import OpcUaSettings, default_resource_id

__all__ = ["OpcUaAdapter", "OpcUaSettings", "ServerConfigurationError", "default_resource_id"]
