"""The ``host`` adapter: free CPU, memory and disk of the machine the agent runs on.

``adapter`` runs the sampling and builds the offered amounts, ``settings`` validates the config
section and ``window`` averages the CPU and memory samples over time. ``sampler`` measures free
cores and available memory, bounded by the container limits that ``cgroups`` reads. ``mounts``
reads a mount's free space and file system type, and ``probe`` runs each such read in a thread
with a time limit and keeps the mount's health.

Errors: a cgroup file with unexpected content raises ``ExportFormatError`` inside the sampler,
which logs it once and uses the host's figures. Mount read failures and timeouts are logged
once and counted in ``health()``; nothing escapes the background task.
"""

from adapters.host.adapter import HostAdapter, HostSample, compute_amounts
from adapters.host.sampler import GIB
from adapters.host.settings import HostReserve, HostSettings
from adapters.host.window import Headroom

__all__ = [
    "GIB",
    "Headroom",
    "HostAdapter",
    "HostReserve",
    "HostSample",
    "HostSettings",
    "compute_amounts",
]
