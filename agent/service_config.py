"""Load the agent config the way the installed service will, with its environment file.

A service does not get the installing shell's environment: systemd passes only the variables of
the unit's ``EnvironmentFile=``. ``${NAME}`` in the config is therefore filled from that file
first and from the current environment second, so a config that loads here also loads there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from agent.broker_session import check_broker_tls
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError, Problem
from kooperant.i18n import Catalog

_ = Catalog.for_module(__name__)

# systemd.exec(5) accepts KEY=VALUE lines; a name is letters, digits and underscores.
ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")


def load_service_config(path: Path, environment_file: Path | None = None) -> AgentConfig:
    """Load and validate the config at ``path``; raise ``ConfigError`` like ``agent run``."""
    variables = dict(os.environ)
    if environment_file is not None:
        variables.update(read_environment_file(environment_file))
    config = load_config(path.absolute(), variables)
    check_broker_tls(config)
    return config


def read_environment_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines; ``#`` and ``;`` start comment lines, quotes around values go.

    Raises ``ConfigError`` naming the file and line of a line that is not an assignment.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(path, [Problem(None, "", _("unreadable", error=error))]) from error
    variables: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        match = ASSIGNMENT.fullmatch(stripped)
        if match is None:
            problems.append(Problem(number, "", _("not_assignment")))
            continue
        variables[match["name"]] = _unquote(match["value"].strip())
    if problems:
        raise ConfigError(path, problems)
    return variables


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
