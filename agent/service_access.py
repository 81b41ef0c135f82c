"""Check, before a service is installed, that its user can read and write what the agent needs.

The check reads the owner, group and mode bits of each path and of every folder above it, the
way the kernel decides for a process of that user. NOTE: POSIX ACLs and permissions that a file
server enforces on its own (SMB, NFS with root squash) are not seen, so a path on a share can
pass here and still be denied to the running service.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.systemd_unit import adapter_paths, certificate_folders_of


@dataclass(frozen=True)
class UserIds:
    """The ids the kernel checks access with: the user's id and all its group ids."""

    name: str
    uid: int
    gids: frozenset[int]
    gid: int
    """The primary group, which owns the folders the install creates."""


@dataclass(frozen=True)
class AccessProblem:
    """A path the user lacks ``access`` to, and the path whose mode bits deny it."""

    path: Path
    access: str
    """``"read"``, ``"write"`` or ``"run"``."""
    denied_by: Path


def access_problems(config: AgentConfig, user: UserIds, interpreter: Path) -> list[AccessProblem]:
    """Return every path the agent needs that ``user`` cannot read, write or run."""
    problems: list[AccessProblem] = []
    problems += _check(interpreter.resolve(), user, os.X_OK, "run")
    problems += _check(Path(sys.prefix).absolute(), user, os.R_OK | os.X_OK, "read")
    problems += _check(config.source.absolute(), user, os.R_OK, "read")
    problems += _check(config.policy_path.absolute(), user, os.R_OK, "read")
    for secret in config.secret_files:
        problems += _check(secret.absolute(), user, os.R_OK, "read")
    for path in adapter_paths(config):
        if path.exists():
            required = os.R_OK | os.X_OK if path.is_dir() else os.R_OK
            problems += _check(path, user, required, "read")

    problems += _check(config.audit_log_path.absolute().parent, user, os.W_OK | os.X_OK, "write")
    for path in _audit_files(config.audit_log_path.absolute()):
        problems += _check(path, user, os.R_OK | os.W_OK, "write")
    for folder in certificate_folders_of(config):
        if folder.exists():
            problems += _check(folder, user, os.R_OK | os.W_OK | os.X_OK, "write")
    return _unique(problems)


def mode_allows(info: os.stat_result, user: UserIds, required: int) -> bool:
    """Return whether the mode bits of ``info`` grant ``required`` (``os.R_OK`` etc.)."""
    if user.uid == 0:
        # root reads and writes anything; it runs a file only if some execute bit is set.
        return not required & os.X_OK or stat.S_ISDIR(info.st_mode) or bool(info.st_mode & 0o111)
    if info.st_uid == user.uid:
        shift = 6
    elif info.st_gid in user.gids:
        shift = 3
    else:
        shift = 0
    granted = (info.st_mode >> shift) & 0o7
    return granted & required == required


def _check(path: Path, user: UserIds, required: int, access: str) -> Iterator[AccessProblem]:
    for folder in reversed(path.parents):
        if not _allows(folder, user, os.X_OK):
            yield AccessProblem(path, access, folder)
            return
    if path.exists() and not _allows(path, user, required):
        yield AccessProblem(path, access, path)


def _allows(path: Path, user: UserIds, required: int) -> bool:
    try:
        return mode_allows(path.stat(), user, required)
    except OSError:
        return False


def _audit_files(audit_log: Path) -> Iterable[Path]:
    """Yield the SQLite file and its journal files that exist; SQLite writes all of them."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = audit_log.with_name(audit_log.name + suffix)
        if path.exists():
            yield path


def _unique(problems: list[AccessProblem]) -> list[AccessProblem]:
    return list(dict.fromkeys(problems))
