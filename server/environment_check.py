"""The check that every set ``KOOPERANT_SERVER_*`` variable names an option of a server command.

Click reads only the variables of the options a command has, so a misspelt name such as
``KOOPERANT_SERVER_PROT`` would otherwise be ignored without a word. ``run``, ``ingest`` and
``migrate`` share one namespace, because one environment (a systemd unit, a container) often
serves several of them: a variable of a sibling command is accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from server.messages import MESSAGES as _

# Minimum difflib ratio between the option part of a misspelt name (after the prefix) and a known
# one for a suggestion. The shared prefix is left out because it alone would make every name look
# close. At 0.7, PROT gets PORT (0.75) but not HOST (0.5).
SUGGESTION_CUTOFF = 0.7


class UnknownVariableError(Exception):
    """Raised for a set ``KOOPERANT_SERVER_*`` variable that no server command reads."""


def check_variables(environment: Mapping[str, str], prefix: str, known: Iterable[str]) -> None:
    """Raise ``UnknownVariableError`` for the first variable with ``prefix`` not in ``known``.

    The message names the variable and the known names closest to it, if any are close.
    """
    known_names = set(known)
    known_options = sorted(name[len(prefix) :] for name in known_names if name.startswith(prefix))
    for name in sorted(environment):
        if not name.startswith(prefix) or name in known_names:
            continue
        option = name[len(prefix) :]
        close = difflib.get_close_matches(option, known_options, n=3, cutoff=SUGGESTION_CUTOFF)
        if close:
            suggestions = ", ".join(prefix + match for match in close)
            raise UnknownVariableError(
                _("server_variable_unknown_close", name=name, close=suggestions)
            )
        raise UnknownVariableError(_("server_variable_unknown", name=name))
