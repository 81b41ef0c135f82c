"""OPC UA adapter: machine states from servers that implement OPC 40001 Machinery.

``adapter`` runs the connection and follows states, ``machinery`` reads the address space and
``settings`` validates the config section. ``limits`` reads the server's operation limits and
batches reads within them, and ``monitoring`` creates monitored items with the data change
filter. Reconnect attempts are spaced by ``kooperant.backoff``.

Exceptions: ``ServerConfigurationError`` (a subclass of ``SourceUnavailableError``) for a server
that responds but lacks the Machinery model or rejects the credentials; every other failure is a
``SourceUnavailableError`` with the asyncua error as its cause.
"""

from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.machinery import ServerConfigurationError
from adapters.opcua.settings import OpcUaSettings, default_resource_id

__all__ = ["OpcUaAdapter", "OpcUaSettings", "ServerConfigurationError", "default_resource_id"]
