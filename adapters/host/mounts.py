"""Free space of one mount and the file system it is on, local or network.

``read_mount`` blocks, and on a network share whose server is gone it may block for minutes, so
the adapter calls it in a thread of its own (see ``adapters.host.probe``).
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import psutil

# Linux file system types whose data is on another machine. The kernel names them in
# /proc/self/mounts; FUSE file systems carry the prefix "fuse.".
NETWORK_FSTYPES = frozenset(
    {
        "9p",
        "afs",
        "ceph",
        "cifs",
        "davfs",
        "fuse.davfs2",
        "fuse.glusterfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.sshfs",
        "glusterfs",
        "gpfs",
        "lustre",
        "ncpfs",
        "nfs",
        "nfs4",
        "smb3",
        "smbfs",
        "sshfs",
    }
)
# psutil lists a Windows drive's type among its options, "remote" for a mapped network drive.
WINDOWS_REMOTE_OPTION = "remote"
UNKNOWN_FSTYPE = "unknown"


class Partition(Protocol):
    """One entry of ``psutil.disk_partitions()``."""

    @property
    def mountpoint(self) -> str: ...
    @property
    def fstype(self) -> str: ...
    @property
    def opts(self) -> str: ...


@dataclass(frozen=True, slots=True)
class MountType:
    """The file system a path is on: its type, where it is mounted and whether it is remote."""

    fstype: str
    mount_point: str
    network: bool

    def describe(self) -> str:
        """Return e.g. ``nfs4 on /srv/data, network`` for logs and health."""
        where = "network" if self.network else "local"
        return f"{self.fstype} on {self.mount_point}, {where}"


@dataclass(frozen=True, slots=True)
class MountReading:
    """The free bytes of one configured path and the file system it is on."""

    free_bytes: int
    mount_type: MountType


def read_mount(path: str) -> MountReading:
    """Read the free bytes of ``path`` and its file system; raises ``OSError`` on failure."""
    free = psutil.disk_usage(path).free
    resolved = os.path.realpath(path)
    partitions = psutil.disk_partitions(all=True)
    return MountReading(free, describe_mount(resolved, partitions, windows=os.name == "nt"))


def describe_mount(path: str, partitions: Sequence[Partition], *, windows: bool) -> MountType:
    """Return the file system of the mount point that contains the absolute ``path``.

    The longest mount point that contains the path wins. Of two equal ones the later wins,
    because a later mount hides an earlier one at the same place. On Windows a UNC path
    (``\\\\server\\share``) is a network path even when no drive is mapped to it.
    """
    module = ntpath if windows else posixpath
    target = module.normcase(module.normpath(path))
    best: Partition | None = None
    for partition in partitions:
        mount_point = module.normcase(module.normpath(partition.mountpoint))
        if not _contains(module.sep, mount_point, target):
            continue
        if best is None or len(mount_point) >= len(module.normpath(best.mountpoint)):
            best = partition

    unc = windows and target.startswith("\\\\")
    if best is None:
        share = ntpath.splitdrive(path)[0] if unc else ""
        return MountType(UNKNOWN_FSTYPE, share or path, network=unc)
    options = best.opts.split(",")
    network = unc or best.fstype in NETWORK_FSTYPES or WINDOWS_REMOTE_OPTION in options
    return MountType(best.fstype or UNKNOWN_FSTYPE, best.mountpoint, network)


def _contains(separator: str, mount_point: str, path: str) -> bool:
    if path == mount_point:
        return True
    prefix = mount_point if mount_point.endswith(separator) else mount_point + separator
    return path.startswith(prefix)
