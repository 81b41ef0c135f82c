"""``--config server.yaml`` and ``KOOPERANT_SERVER_*`` variables for the server commands.

A command built with ``cls=ConfigurableCommand`` gets, for every option it has:

- an environment variable ``KOOPERANT_SERVER_<OPTION>``, such as ``KOOPERANT_SERVER_DATABASE``
  for ``--database`` (the option's ``envvar``; a list option such as ``--trusted-proxy`` splits
  the value at whitespace). A set ``KOOPERANT_SERVER_*`` variable that names no option of
  ``run``, ``ingest`` or ``migrate`` is an error, so that a misspelt name does not go unnoticed;
- a key in the YAML file of ``--config`` (or ``KOOPERANT_SERVER_CONFIG``), named like the option
  with ``_`` for ``-``: ``database``, ``broker_password_file``, ``trusted_proxy`` as a list.

The file fills click's ``default_map``, so the value of an option comes from the command line,
then the environment, then the file, then the option's default. Options added to a command
later get both without code here. One file serves ``run``, ``ingest`` and ``migrate``, so a key
of another server command is accepted and ignored. Any other key is an error that names the
file, the line and the key, and so is a value of the wrong type.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from typer.core import TyperCommand, TyperGroup, TyperOption

from server.environment_check import SUGGESTION_CUTOFF, UnknownVariableError, check_variables
from server.messages import MESSAGES as _
from server.option_sources import (
    CONFIG_LINES_META,
    ENVIRONMENT_PREFIX,
    environment_value,
    source_of,
    type_error_text,
)

logger = logging.getLogger(__name__)

CONFIG_VARIABLE = "KOOPERANT_SERVER_CONFIG"
CONFIG_KEY = "config"
# The exit status of click for invalid options, which a bad config file is.
EXIT_INVALID_CONFIG = 2


class ConfigurableCommand(TyperCommand):
    """A typer command whose options also come from ``KOOPERANT_SERVER_*`` and ``--config``.

    The command declares ``config: Path | None = ConfigOption`` itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperOption) and param.envvar is None and param.name:
                # The variables are not listed per option, because typer 0.29 then adds an
                # untranslated "(env var: ...)" to every error about the option. The help of
                # --config states the naming rule instead.
                param.envvar = ENVIRONMENT_PREFIX + param.name.upper()
                param.show_envvar = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # After the options, so that --help still works with a misspelt variable set.
        try:
            remaining: list[str] = super().parse_args(ctx, args)
        except typer.BadParameter as error:
            _name_variable(ctx, error)
            raise
        if not ctx.resilient_parsing:
            known = {ENVIRONMENT_PREFIX + key.upper() for key in _sibling_keys(ctx)}
            known |= {ENVIRONMENT_PREFIX + key.upper() for key in option_names(self)}
            known.add(CONFIG_VARIABLE)
            try:
                check_variables(os.environ, ENVIRONMENT_PREFIX, known)
            except UnknownVariableError as error:
                typer.echo(str(error), err=True)
                raise typer.Exit(EXIT_INVALID_CONFIG) from error
        return remaining

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # Help shows each option's default, which would otherwise be the value from the file,
        # and a database URL there may contain a password.
        saved = ctx.default_map
        ctx.default_map = None
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.default_map = saved


def _name_variable(ctx: Any, error: typer.BadParameter) -> None:
    """Make ``error`` name the variable that gave the invalid value, in the user's language."""
    param = error.param
    if param is None or not param.name or source_of(ctx, param.name) is None:
        return
    variable = source_of(ctx, param.name)
    error.message = type_error_text(error.message, environment_value(param.name))
    error.param_hint = f"{variable} ({param.opts[0]})"


def option_names(command: TyperCommand) -> list[str]:
    """Return the config file keys of ``command``: its option names, without ``config``."""
    return [
        param.name
        for param in command.params
        if isinstance(param, TyperOption) and param.name and param.name != CONFIG_KEY
    ]


def apply_config_file(ctx: typer.Context, path: Path | None) -> Path | None:
    """Put the values of the file ``path`` into ``ctx.default_map``; exit 2 when invalid."""
    if path is None or ctx.resilient_parsing:
        return path
    try:
        command = ctx.command
        assert isinstance(command, TyperCommand)
        values = read_config_file(path, command, _sibling_keys(ctx))
    except ConfigFileError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_INVALID_CONFIG) from error
    logger.debug("Read %d settings from %s", len(values), path)
    ctx.default_map = {**(ctx.default_map or {}), **values}
    ctx.meta[CONFIG_LINES_META] = {entry.key: (path, entry.line) for entry in _entries(path)}
    return path


ConfigOption: Any = typer.Option(
    None,
    "--config",
    envvar=CONFIG_VARIABLE,
    show_envvar=False,
    is_eager=True,
    dir_okay=False,
    callback=apply_config_file,
    help=_("opt_config"),
)


def _sibling_keys(ctx: typer.Context) -> set[str]:
    """Return the option names of every configurable command in the same group."""
    keys: set[str] = set()
    group = ctx.parent.command if ctx.parent is not None else None
    if isinstance(group, TyperGroup):
        for command in group.commands.values():
            if isinstance(command, ConfigurableCommand):
                keys.update(option_names(command))
    return keys


class ConfigFileError(Exception):
    """Raised for a server config file that is missing, unreadable or invalid."""


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    line: int
    value: Any


def read_config_file(
    path: Path, command: TyperCommand, other_keys: set[str] | None = None
) -> dict[str, Any]:
    """Return the settings of ``command`` found in the YAML file ``path``, checked by type.

    Keys in ``other_keys`` belong to other commands and are skipped. Raises
    ``ConfigFileError`` naming the file, and the line and key where there is one.
    """
    params = {
        param.name: param
        for param in command.params
        if isinstance(param, TyperOption) and param.name and param.name != CONFIG_KEY
    }
    known = set(params) | (other_keys or set())
    values: dict[str, Any] = {}
    ctx = typer.Context(command)
    for entry in _entries(path):
        if entry.key not in known:
            raise _error(path, entry, _unknown_key_text(entry.key, known))
        param = params.get(entry.key)
        if param is None or entry.value is None:
            continue
        values[entry.key] = _checked_value(path, entry, param, ctx)
    return values


def _entries(path: Path) -> Iterator[_Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigFileError(_("config_file_missing", path=str(path))) from error
    except (OSError, UnicodeDecodeError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigFileError(_("config_file_unreadable", path=str(path), detail=detail)) from error

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        detail = error.problem or str(error)
        raise ConfigFileError(
            _("config_file_yaml", place=f"{path}{line}", detail=detail)
        ) from error
    if root is None:
        return
    if not isinstance(root, yaml.MappingNode):
        place = f"{path}:{root.start_mark.line + 1}"
        raise ConfigFileError(_("config_file_not_mapping", place=place))

    seen: set[str] = set()
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        if key in seen:
            raise ConfigFileError(_("config_key_duplicate", place=f"{path}:{line}", key=key))
        seen.add(key)
        try:
            value = yaml.SafeLoader("").construct_object(value_node, deep=True)
        except yaml.MarkedYAMLError as error:
            detail = error.problem or str(error)
            raise ConfigFileError(
                _("config_file_yaml", place=f"{path}:{line}", detail=detail)
            ) from error
        yield _Entry(key, line, value)


def _checked_value(path: Path, entry: _Entry, param: TyperOption, ctx: typer.Context) -> Any:
    """Return ``entry.value`` as ``param`` takes it, or raise ``ConfigFileError``."""
    if param.multiple and not isinstance(entry.value, list):
        raise _error(path, entry, _("config_value_not_list"))
    items = entry.value if param.multiple else [entry.value]
    if not all(_is_scalar(item) for item in items):
        raise _error(path, entry, _("config_value_not_scalar"))

    try:
        value = param.process_value(ctx, entry.value)
    except typer.BadParameter as error:
        # The message alone: format_message() names the option's environment variable.
        raise _error(path, entry, type_error_text(error.message, entry.value)) from error
    # The option's own conversion turns true into 1 for a number.
    if isinstance(entry.value, bool) and not isinstance(value, bool):
        raise _error(path, entry, _("config_value_bool_number"))
    return value


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _error(path: Path, entry: _Entry, reason: str) -> ConfigFileError:
    return ConfigFileError(f"{path}:{entry.line}: {entry.key}: {reason}")


def _unknown_key_text(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=SUGGESTION_CUTOFF)
    if close:
        return _("config_key_unknown_close", close=", ".join(close))
    return _("config_key_unknown", known=", ".join(sorted(known)))
