"""OPC UA adapter: machine states from servers that implement OPC 40001 Machinery.

``adapter`` runs the connection and follows states, ``machinery`` reads the address space and
``settings`` validates the config section. ``security`` connects with the configured security
policy, mode and identity, and ``certificates`` keeps the agent's certificate and the trusted
server certificates. Reconnect attempts are spaced by ``kooperant.backoff``.

Exceptions: ``ServerConfigurationError`` (a subclass of ``SourceUnavailableError``) for a server
that responds but lacks the Machinery model, rejects the credentials or the agent's certificate,
offers no endpoint with the configured security, or has a certificate the agent does not trust,
and for missing or invalid certificate files. Every other failure is a
``SourceUnavailableError`` with the asyncua error as its cause.
"""

from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.machinery import ServerConfigurationError
from adapters.opcua.settings import OpcUaSettings, default_resource_id

__all__ = ["OpcUaAdapter", "OpcUaSettings", "ServerConfigurationError", "default_resource_id"]
