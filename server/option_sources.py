"""Option value sources for error messages, and option type errors in the user's language.

An option of ``run``, ``ingest`` or ``migrate`` gets its value from the command line, a
``KOOPERANT_SERVER_*`` variable, the ``--config`` file or its default (click's
``ParameterSource``). An error about the value names the option, but the operator must fix it
where it was set, so ``source_of`` describes that place: ``KOOPERANT_SERVER_PORT`` or
``server.yaml:3 (port)``. The config file's key lines are stored in ``ctx.meta`` under
``CONFIG_LINES_META`` by ``server.config_file``.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable
from typing import Any

from typer._click.core import ParameterSource

from server.messages import MESSAGES as _

# ``ctx.meta`` key of ``{option name: (config file path, line)}`` of the file that was read.
CONFIG_LINES_META = "kooperant.server.config_lines"
ENVIRONMENT_PREFIX = "KOOPERANT_SERVER_"
_OPTION_PATTERN = re.compile(r"--[a-z][a-z0-9-]*")
# Beginnings of pydantic's type errors (which typer 0.29 uses to convert option values), each with
# the catalogue message for it in the user's language.
_TYPE_ERRORS = (
    ("Input should be a valid integer", "value_not_integer"),
    ("Input should be a valid number", "value_not_number"),
    ("Input should be a valid boolean", "value_not_boolean"),
)
# OS errors of reading a password or token file, and the catalogue message of each.
# pydantic's range errors of options with min= and max=, such as --port.
_RANGE_ERROR = re.compile(r"Input should be (?P<side>less|greater) than or equal to (?P<limit>\S+)")
_OS_ERRORS = {
    errno.EISDIR: "os_error_is_directory",
    errno.ENOENT: "os_error_not_found",
    errno.EACCES: "os_error_permission_denied",
}


def source_of(ctx: Any, name: str) -> str | None:
    """Return where option ``name`` got its value, when that is a variable or the config file.

    Returns ``None`` for a value from the command line or the default, which the option name
    describes already.
    """
    source = ctx.get_parameter_source(name)
    if source == ParameterSource.ENVIRONMENT:
        return ENVIRONMENT_PREFIX + name.upper()
    if source == ParameterSource.DEFAULT_MAP:
        path, line = ctx.meta.get(CONFIG_LINES_META, {}).get(name, (None, None))
        if path is None:
            return None
        return f"{path}:{line} ({name})"
    return None


def with_sources(ctx: Any, message: str, options: Iterable[str] = ()) -> str:
    """Return ``message`` followed by where each option it names (and each of ``options``) was set.

    Only options whose value came from a variable or the config file get a note.
    """
    names_by_flag = {
        flag: param.name
        for param in ctx.command.params
        for flag in getattr(param, "opts", ())
        if param.name
    }
    flags = dict.fromkeys([*_OPTION_PATTERN.findall(message), *options])
    notes = []
    for flag in flags:
        name = names_by_flag.get(flag)
        place = source_of(ctx, name) if name is not None else None
        if place is not None:
            notes.append(_("option_value_source", option=flag, place=place))
    return " ".join([message, *notes])


def type_error_text(detail: str, value: object) -> str:
    """Return pydantic's English type error ``detail`` in the user's language, naming ``value``.

    Any other detail is returned unchanged.
    """
    for beginning, message_id in _TYPE_ERRORS:
        if detail.startswith(beginning):
            return _(message_id, value=repr(value))

    match = _RANGE_ERROR.match(detail)
    if match is not None:
        message_id = "value_above_maximum" if match["side"] == "less" else "value_below_minimum"
        return _(message_id, value=repr(value), limit=match["limit"])
    return detail


def os_error_text(error: OSError) -> str:
    """Return the reason of ``error`` in the user's language, or its English text."""
    message_id = _OS_ERRORS.get(error.errno or 0)
    if message_id is not None:
        return _(message_id)
    return error.strerror or str(error)


def environment_value(name: str) -> str | None:
    """Return the value of the variable of option ``name``."""
    return os.environ.get(ENVIRONMENT_PREFIX + name.upper())
