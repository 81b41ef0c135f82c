"""Give the service user read access to the secret files of its config, by group only.

``kooperant agent init`` writes the broker password with mode 0600 into a 0700 folder, owned by
whoever ran it (root under sudo), so a service running as the system user ``kooperant`` cannot
read it. ``secret_fixes`` lists what stands in the way: a secret file without the read bit, or a
folder above it without the search (x) bit, for the service user. ``grant`` applies a fix by
changing the group of the path to the service user's primary group and adding the group read
(file) or search (folder) bit; owner and other bits stay as they were.

``grant`` changes a path only when that is safe: its group bits grant nothing yet (so no member
of the old group loses access), or its group already is the service user's. A folder is changed
only below the config's folder, never /home or /etc themselves; any other fix is left to the
operator with the command that does it.
"""

from __future__ import annotations

import grp
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.service_access import UserIds, mode_allows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SecretFix:
    """A path that denies the service user a secret file, and the group bit that would allow it."""

    path: Path
    bit: int
    """``stat.S_IRGRP`` for the secret file, ``stat.S_IXGRP`` for a folder above it."""
    secret: Path
    """The secret file this fix is for."""

    @property
    def is_folder(self) -> bool:
        return self.bit == stat.S_IXGRP


def secret_fixes(config: AgentConfig, user: UserIds) -> list[SecretFix]:
    """Return the changes that would let ``user`` read every secret file of ``config``."""
    fixes: list[SecretFix] = []
    for secret in config.secret_files:
        path = secret.absolute()
        for folder in reversed(path.parents):
            if not _allows(folder, user, os.X_OK):
                fixes.append(SecretFix(folder, stat.S_IXGRP, path))
        if not _allows(path, user, os.R_OK):
            fixes.append(SecretFix(path, stat.S_IRGRP, path))
    return list(dict.fromkeys(fixes))


def group_name(gid: int) -> str:
    """Return the name of the group ``gid``, or the number when it has no name."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def fix_command(fix: SecretFix, group: str) -> str:
    """Return the shell command that applies ``fix`` for the group ``group``."""
    mode = "g+x" if fix.is_folder else "g+r"
    return f"sudo chgrp {group} {fix.path} && sudo chmod {mode} {fix.path}"


def can_grant(fix: SecretFix, config: AgentConfig, user: UserIds) -> bool:
    """Return whether ``grant`` may apply ``fix`` without taking access from anyone."""
    try:
        info = fix.path.stat()
    except OSError:
        return False
    if fix.is_folder:
        inside = config.config_dir.absolute() in fix.path.parents
        if not inside:
            return False
    return info.st_gid == user.gid or info.st_mode & stat.S_IRWXG == 0


def grant(fix: SecretFix, user: UserIds) -> None:
    """Set the group of ``fix.path`` to ``user``'s primary group and add ``fix.bit``.

    Raises ``OSError`` when the path cannot be changed.
    """
    info = fix.path.stat()
    os.chown(fix.path, -1, user.gid)
    os.chmod(fix.path, stat.S_IMODE(info.st_mode) | fix.bit)
    logger.info("Set the group of %s to %s and added the mode bit %o", fix.path, user.gid, fix.bit)


def _allows(path: Path, user: UserIds, required: int) -> bool:
    try:
        return mode_allows(path.stat(), user, required)
    except OSError:
        return False
