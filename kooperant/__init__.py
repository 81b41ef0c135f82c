"""kooperant: share free capacity inside an industry cluster, under each owner's policy.

The distribution holds four top-level packages:

- ``kooperant``: the command line, the demo, and what both sides share (``protocol``,
  ``intervals``, ``i18n``, ``backoff``, ``net``);
- ``agent``: runs on a member's premises and publishes permitted offers;
- ``server``: the cluster aggregator with its API and dashboard;
- ``adapters``: connectors that read machines, hosts and ERP exports.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kooperant")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
