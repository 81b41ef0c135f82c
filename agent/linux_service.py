"""Install and remove the agent's systemd unit: user, unit file, ``systemctl``.

Every call that changes the system goes through ``SystemHost``, the one seam tests replace, so a
test writes units into a temporary folder and records the commands instead of running them.
Failures raise ``ServiceError`` with a message for the operator in the current language.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.secret_access import SecretFix, can_grant, fix_command, grant, group_name, secret_fixes
from agent.service_access import AccessProblem, UserIds, access_problems
from agent.systemd_unit import (
    certificate_folders_of,
    is_kooperant_unit,
    render_unit,
    unit_settings_for,
)
from kooperant.i18n import Catalog

logger = logging.getLogger(__name__)

_ = Catalog.for_module(__name__)

UNIT_NAME_PATTERN = re.compile(r"[A-Za-z0-9:_.\\-]+\.service")
# useradd's default rule for names (NAME_REGEX of Debian's adduser), at most 32 characters.
USER_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
NOLOGIN_SHELL = "/usr/sbin/nologin"


class ServiceError(Exception):
    """An install or uninstall step failed; its message names the next step for the operator."""


@dataclass(frozen=True, kw_only=True)
class LinuxInstall:
    """The options of ``install-service`` on Linux, checked by ``unit_name`` and ``check_user``."""

    name: str
    user: str
    unit_dir: Path
    environment_file: Path | None
    start: bool
    force: bool
    sudo_command: str
    grant_secrets: bool = False
    """Give the service user's group read access to the config's secret files."""


class SystemHost:
    """The system calls of installing a service; tests pass a fake."""

    def is_root(self) -> bool:
        return os.geteuid() == 0

    def user_ids(self, name: str) -> UserIds | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        gids = frozenset(os.getgrouplist(name, entry.pw_gid))
        return UserIds(name, entry.pw_uid, gids, entry.pw_gid)

    def run(self, command: list[str]) -> None:
        """Run ``command``; raise ``ServiceError`` with its output if it exits non-zero."""
        logger.info("Running %s", shlex.join(command))
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise ServiceError(_("command.missing", command=command[0], error=error)) from error
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise ServiceError(
                _("command.failed", command=shlex.join(command), code=result.returncode)
                + (f"\n{output}" if output else "")
            )


def unit_name(name: str) -> str:
    """Return ``name`` with ``.service`` appended when missing; raise for invalid characters."""
    full = name if name.endswith(".service") else f"{name}.service"
    if not UNIT_NAME_PATTERN.fullmatch(full) or len(full) > 255:
        raise ServiceError(_("name.invalid", name=name))
    return full


def check_user(name: str) -> str:
    if not USER_NAME_PATTERN.fullmatch(name):
        raise ServiceError(_("user.invalid", user=name))
    return name


def install(options: LinuxInstall, config: AgentConfig, host: SystemHost) -> list[str]:
    """Create the user, write the unit for ``config`` and enable it; return lines to show."""
    if not host.is_root():
        raise ServiceError(_("not_root", command=options.sudo_command))
    unit_path = options.unit_dir / options.name
    _check_replaceable(unit_path, options.force)

    user, lines = _ensure_user(options.user, host)
    lines += create_writable_folders(config, user)
    interpreter = Path(sys.executable).absolute()
    fixes = secret_fixes(config, user)
    secrets = {fix.secret for fix in fixes}
    problems = access_problems(config, user, interpreter)
    check_user_access(options.user, [p for p in problems if p.path not in secrets])
    lines += _give_secret_access(fixes, config, user, options.grant_secrets)
    check_user_access(options.user, access_problems(config, user, interpreter))

    settings = unit_settings_for(
        config, user=options.user, environment_file=options.environment_file, python=interpreter
    )
    _write_unit(unit_path, render_unit(settings))
    host.run(["systemctl", "daemon-reload"])
    if options.start:
        host.run(["systemctl", "enable", "--now", options.name])
    else:
        host.run(["systemctl", "enable", options.name])

    done = "started" if options.start else "enabled"
    return [
        *lines,
        _("written", path=unit_path),
        _(done, name=options.name),
        _("logs", name=options.name.removesuffix(".service"), config=config.source),
    ]


def _ensure_user(name: str, host: SystemHost) -> tuple[UserIds, list[str]]:
    """Return the user's ids, after creating it as a system user if it is missing."""
    user = host.user_ids(name)
    if user is not None:
        return user, []
    host.run(["useradd", "--system", "--no-create-home", "--shell", NOLOGIN_SHELL, name])
    user = host.user_ids(name)
    if user is None:
        raise ServiceError(_("user.not_found", user=name))
    return user, [_("user.created", user=name)]


def create_writable_folders(config: AgentConfig, user: UserIds) -> list[str]:
    """Create the missing folders the agent writes, owned by ``user``; return lines to show.

    ProtectSystem=strict leaves only the unit's ReadWritePaths writable, so the agent could not
    create them itself once it runs as a service.
    """
    lines = []
    folders = [config.audit_log_path.absolute().parent, *certificate_folders_of(config)]
    for folder in folders:
        if folder.exists():
            continue
        try:
            folder.mkdir(mode=0o750, parents=True)
            os.chown(folder, user.uid, user.gid)
        except OSError as error:
            raise ServiceError(_("write.failed", path=folder, error=error)) from error
        logger.info("Created %s for the service user %s", folder, user.name)
        lines.append(_("folder.created", path=folder, user=user.name))
    return lines


def _give_secret_access(
    fixes: list[SecretFix], config: AgentConfig, user: UserIds, allowed: bool
) -> list[str]:
    """Apply ``fixes`` if ``allowed`` and all are safe, else raise with the commands to run."""
    if not fixes:
        return []
    group = group_name(user.gid)
    if not allowed:
        commands = "\n".join(f"  {fix_command(fix, group)}" for fix in fixes)
        raise ServiceError(
            _("secrets.denied", user=user.name, commands=commands, option="--grant-secrets")
        )
    unsafe = [fix for fix in fixes if not can_grant(fix, config, user)]
    if unsafe:
        commands = "\n".join(f"  {fix_command(fix, group)}" for fix in unsafe)
        raise ServiceError(_("secrets.unsafe", user=user.name, commands=commands))

    lines = []
    for fix in fixes:
        try:
            grant(fix, user)
        except OSError as error:
            raise ServiceError(_("write.failed", path=fix.path, error=error)) from error
        mode = "g+x" if fix.is_folder else "g+r"
        lines.append(_("secrets.granted", path=fix.path, group=group, mode=mode))
    return lines


def check_user_access(user: str, problems: list[AccessProblem]) -> None:
    """Raise ``ServiceError`` listing ``problems`` with the commands that fix them."""
    if not problems:
        return
    details = "\n".join(
        _(f"access.{problem.access}", path=problem.path, denied_by=problem.denied_by)
        for problem in problems
    )
    raise ServiceError(_("access.problems", user=user, details=details))


def uninstall(name: str, unit_dir: Path, *, force: bool, host: SystemHost, sudo: str) -> list[str]:
    """Stop, disable and remove the unit; return the lines to show the operator."""
    if not host.is_root():
        raise ServiceError(_("not_root", command=sudo))
    unit_path = unit_dir / name
    if not unit_path.exists():
        raise ServiceError(_("unit.missing", path=unit_path))
    text = unit_path.read_text(encoding="utf-8")
    if not is_kooperant_unit(text) and not force:
        raise ServiceError(_("unit.foreign", path=unit_path, option="--force"))

    host.run(["systemctl", "disable", "--now", name])
    unit_path.unlink()
    host.run(["systemctl", "daemon-reload"])
    logger.info("Removed the systemd unit %s", unit_path)

    user = _setting(text, "User") or "?"
    config = _config_of(text) or "?"
    return [_("removed", path=unit_path), _("kept", config=config, user=user)]


def _write_unit(unit_path: Path, text: str) -> None:
    """Replace the unit file in one rename, so systemd never reads half a file."""
    temporary = unit_path.with_name(f".{unit_path.name}.tmp")
    try:
        unit_path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o644)
        temporary.replace(unit_path)
    except OSError as error:
        raise ServiceError(_("write.failed", path=unit_path, error=error)) from error
    logger.info("Wrote the systemd unit %s", unit_path)


def _check_replaceable(unit_path: Path, force: bool) -> None:
    if not unit_path.exists() or force:
        return
    if not is_kooperant_unit(unit_path.read_text(encoding="utf-8")):
        raise ServiceError(_("unit.foreign", path=unit_path, option="--force"))


def _setting(text: str, key: str) -> str | None:
    match = re.search(rf"^{key}=(.*)$", text, re.MULTILINE)
    return match.group(1) if match else None


def _config_of(text: str) -> str | None:
    exec_start = _setting(text, "ExecStart")
    if exec_start is None:
        return None
    try:
        words = shlex.split(exec_start.replace("%%", "%").replace("$$", "$"))
    except ValueError:
        return None
    if "--config" in words[:-1]:
        return words[words.index("--config") + 1]
    return None
