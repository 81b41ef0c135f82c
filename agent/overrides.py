"""Environment variables that override values of the agent config file.

``KOOPERANT_AGENT__BROKER__URL=mqtt://broker:1883`` sets ``broker.url``: the part after the
prefix names the key path, ``__`` separates the levels and key names are case-insensitive. A
list item is chosen by its index (``KOOPERANT_AGENT__ADAPTERS__0__URL``) and an adapter also by
its name, where ``_`` matches ``-`` because variable names cannot contain ``-``
(``KOOPERANT_AGENT__ADAPTERS__CNC_PARK__URL`` for the adapter ``cnc-park``). A resource is
chosen by its id in the same way. Only items already in the file can be overridden.

A value is read as a YAML scalar, so ``9000`` is a number and ``false`` a boolean, except for
keys that hold text (such as passwords and URLs), which take the value as it is. A last part
ending in ``_FILE`` that is not itself a key (``KOOPERANT_AGENT__BROKER__PASSWORD_FILE``) reads
the value from that file, Docker-secrets style, through ``read_secret_file``. A variable naming
an unknown key is an error, so a typo is not silently ignored. A variable cannot set a whole
section or list (``KOOPERANT_AGENT__BROKER``), only the values inside it, so that every value
set from the environment is named by its own variable in errors.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, create_model

from adapters.errors import UnknownAdapterError
from adapters.registry import load_adapter_class
from agent.errors import Problem
from agent.reasons import count_text
from agent.validation_messages import MESSAGES
from agent.yamlfile import Location, format_location, read_secret_file, secret_file_path
from kooperant.i18n import current_language

PREFIX = "KOOPERANT_AGENT__"
_SEPARATOR = "__"
_FILE_SUFFIX = "_file"


@dataclass(frozen=True, slots=True)
class Override:
    """One applied variable: its name and the key path whose value it replaced."""

    variable: str
    location: Location
    secret_file: Path | None = None
    """The file a ``_FILE`` variable read the value from."""


class OverrideError(ValueError):
    """Raised for a variable that names no key or whose file cannot be read."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(reason)
        self.problem = Problem(None, "", reason, variable=variable)


def apply_overrides(
    data: dict[str, Any], variables: Mapping[str, str], folder: Path, model: type[BaseModel]
) -> tuple[list[Override], list[Problem]]:
    """Set the values named by ``KOOPERANT_AGENT__*`` variables in ``data``, in place.

    ``model`` is the config's pydantic model, whose fields are the known keys. Relative
    ``_FILE`` paths start at ``folder``, the config file's folder. Returns the applied overrides
    sorted by variable name, and one problem per variable that could not be applied.
    """
    applied: list[Override] = []
    problems: list[Problem] = []
    for variable in sorted(name for name in variables if name.upper().startswith(PREFIX)):
        try:
            location, secret_file = _apply_one(data, variable, variables[variable], folder, model)
        except OverrideError as error:
            problems.append(error.problem)
            continue
        applied.append(Override(variable, location, secret_file))
    return applied, problems


def variables_for(variables: Mapping[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    """Return the ``KOOPERANT_AGENT__*`` variables that set values under the top-level ``keys``.

    A command that reads only part of the config applies only these, so that a variable for
    another section does not stop it. ``KEY_FILE`` variables count as under ``KEY``.
    """
    top_keys = {key.lower() for key in keys} | {key.lower() + _FILE_SUFFIX for key in keys}
    selected = {}
    for name, value in variables.items():
        if not name.upper().startswith(PREFIX):
            continue
        top = name[len(PREFIX) :].split(_SEPARATOR)[0].lower()
        if top in top_keys:
            selected[name] = value
    return selected


def _apply_one(
    data: dict[str, Any], variable: str, text: str, folder: Path, model: type[BaseModel]
) -> tuple[Location, Path | None]:
    """Set the value ``variable`` names; return its key path and the secret file it read."""
    parts = [part.lower() for part in variable[len(PREFIX) :].split(_SEPARATOR)]
    if not all(parts):
        raise OverrideError(variable, MESSAGES("override.empty_part"))

    container: Any = data
    annotation: Any = model
    location: list[str | int] = []
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        key, annotation = _step(variable, container, annotation, part, last, location)
        if last:
            _reject_section(variable, container, key, annotation, location)
            value = _read_value(variable, text, annotation, key, folder)
            secret_file = secret_file_path(text, folder) if isinstance(key, _FileKey) else None
            key = str(key) if isinstance(key, _FileKey) else key
            container[key] = value
            location.append(key)
            return tuple(location), secret_file
        location.append(key)
        container = _child(variable, container, key, location)
    raise AssertionError("unreachable: the loop returns at the last part")


def _step(
    variable: str,
    container: Any,
    annotation: Any,
    part: str,
    last: bool,
    location: list[str | int],
) -> tuple[str | int, Any]:
    """Return the key that ``part`` names in ``container`` and the annotation of its value."""
    model = _model_of(annotation)
    if model is not None:
        if part in model.model_fields:
            return part, model.model_fields[part].annotation
        if last and part.endswith(_FILE_SUFFIX):
            stem = part[: -len(_FILE_SUFFIX)]
            if stem in model.model_fields:
                return _FileKey(stem), model.model_fields[stem].annotation
        raise _unknown(variable, location, part, sorted(model.model_fields))

    if isinstance(container, list):
        index = _list_index(variable, container, part, location)
        return index, _adapter_model(container[index]) or _item_annotation(annotation)
    if isinstance(container, dict) and _is_mapping(annotation):
        for key in container:
            if _same_name(str(key), part):
                return str(key), _item_annotation(annotation)
        raise _unknown(variable, location, part, sorted(map(str, container)))
    raise OverrideError(
        variable, MESSAGES("override.not_section", key=format_location(location) or part)
    )


def _reject_section(
    variable: str, container: Any, key: str | int, annotation: Any, location: list[str | int]
) -> None:
    """Raise ``OverrideError`` when ``key`` names a section or a list of sections."""
    current = container.get(key) if isinstance(container, dict) else container[int(key)]
    section = (
        _model_of(annotation) is not None
        or _is_mapping(annotation)
        or _model_of(_item_annotation(annotation)) is not None
        or isinstance(current, dict)
        or (isinstance(current, list) and any(isinstance(item, dict) for item in current))
    )
    if section:
        key_text = format_location([*location, key])
        raise OverrideError(variable, MESSAGES("override.section_value", key=key_text))


class _FileKey(str):
    """A key whose value comes from the file that the variable names."""

    __slots__ = ()


def _read_value(variable: str, text: str, annotation: Any, key: str | int, folder: Path) -> Any:
    if isinstance(key, _FileKey):
        try:
            return read_secret_file(text, folder)
        except ValueError as error:
            raise OverrideError(variable, str(error)) from error
    if _holds_text(annotation):
        return text
    try:
        return yaml.safe_load(text) if text else text
    except yaml.YAMLError:
        return text


def _child(variable: str, container: Any, key: str | int, location: list[str | int]) -> Any:
    """Return the value at ``key``, adding an empty section for a key the file left out."""
    if isinstance(container, dict):
        child = container.get(key)
        if child is None:
            child = container[key] = {}
        if isinstance(child, dict | list):
            return child
    elif isinstance(container, list):
        child = container[int(key)]
        if isinstance(child, dict | list):
            return child
    raise OverrideError(variable, MESSAGES("override.not_section", key=format_location(location)))


def _list_index(variable: str, items: list[Any], part: str, location: list[str | int]) -> int:
    if part.isdigit():
        index = int(part)
        if index < len(items):
            return index
        count = count_text(len(items), "noun.item", current_language())
        reason = MESSAGES(
            "override.index_missing", key=format_location(location), index=index, items=count
        )
        raise OverrideError(variable, reason)
    names = [str(item.get("name")) for item in items if isinstance(item, dict) and "name" in item]
    for index, item in enumerate(items):
        if isinstance(item, dict) and _same_name(str(item.get("name", "")), part):
            return index
    raise _unknown(variable, location, part, names)


def _adapter_model(item: Any) -> type[BaseModel] | None:
    """Return the settings model of the adapter entry ``item``, or None for another item."""
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        return None
    try:
        settings_model: type[BaseModel] = load_adapter_class(item["type"]).settings_model
    except (UnknownAdapterError, ImportError, TypeError):
        # load_config reports the unknown or broken type with its line.
        return None
    return _with_fields(settings_model, ("type", "name"))


def _with_fields(model: type[BaseModel], names: tuple[str, ...]) -> type[BaseModel]:
    """Return a model like ``model`` that also has the text fields ``names``."""
    fields: dict[str, Any] = {name: (str, ...) for name in names}
    return create_model(f"{model.__name__}Entry", __base__=model, **fields)


def _unknown(
    variable: str, location: list[str | int], part: str, known: list[str]
) -> OverrideError:
    key = format_location([*location, part])
    listed = ", ".join(known) or "-"
    return OverrideError(variable, MESSAGES("override.unknown_key", key=key, known=listed))


def _same_name(written: str, part: str) -> bool:
    return written.lower().replace("-", "_") == part.replace("-", "_")


def _arguments(annotation: Any) -> tuple[Any, ...]:
    """Return the members of a union, or the annotation itself, without ``Annotated`` metadata."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _arguments(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        members: tuple[Any, ...] = ()
        for member in typing.get_args(annotation):
            members += _arguments(member)
        return members
    return (annotation,)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for member in _arguments(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _is_mapping(annotation: Any) -> bool:
    return any(typing.get_origin(member) is dict for member in _arguments(annotation))


def _item_annotation(annotation: Any) -> Any:
    for member in _arguments(annotation):
        arguments = typing.get_args(member)
        if typing.get_origin(member) is dict:
            return arguments[1]
        if typing.get_origin(member) in (tuple, list) and arguments:
            return arguments[0]
    return None


def _holds_text(annotation: Any) -> bool:
    members = _arguments(annotation)
    return any(member in (str, SecretStr, Path) for member in members)
