"""YAML files that remember where each value came from.

``YamlDocument.load`` reads a file with PyYAML's safe loader, keeps the composed node tree next to
the plain Python data and expands ``${NAME}``, ``${NAME:-default}`` and ``${file:PATH}`` in string
values. ``${file:PATH}`` is replaced by the content of the file PATH, which starts at the YAML
file's folder when relative, with one trailing newline removed; it keeps secrets out of the file
itself. The content is never part of an error message. Errors of
pydantic models validated from ``data`` are turned into ``Problem`` objects whose line is looked up
in the node tree along the error's ``loc`` path, so every message can name the file, the line and
the key path, for example ``agent.yaml:12: broker.url: ...``. The reason after the key path is
worded in the current language (``kooperant.i18n.current_language``) when the problem is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.errors import ConfigError, Problem
from agent.reasons import pydantic_reason, repeats_item_errors, yaml_syntax_reason
from agent.validation_messages import MESSAGES

Location = tuple[str | int, ...]

_STRING_TAG = "tag:yaml.org,2002:str"
_MERGE_KEY = "<<"
_REFERENCE = re.compile(
    r"\$\{(?:file:(?P<file>[^}]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}"
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """The data of one YAML file and the node tree it was built from."""

    path: Path
    data: Any
    root: yaml.Node | None
    overrides: Mapping[Location, str] = field(default_factory=dict)
    """Key paths whose value an environment variable replaced, with the variable's name."""
    secret_files: tuple[Path, ...] = ()
    """Files that ``${file:PATH}`` references read, in the order found; paths only."""

    @classmethod
    def load(cls, path: Path, variables: Mapping[str, str] | None = None) -> YamlDocument:
        """Read ``path``, expand variables from ``variables`` (default: the environment).

        Raises ``ConfigError`` for an unreadable file, invalid YAML, a duplicate key, a
        variable that is not set and has no default, or a ``${file:PATH}`` whose file is
        missing, unreadable or empty.
        """
        return cls.parse(_read_text(path), path, variables)

    @classmethod
    def parse(
        cls, text: str, path: Path, variables: Mapping[str, str] | None = None
    ) -> YamlDocument:
        """Parse ``text`` already read from ``path``; raises ``ConfigError`` as ``load`` does."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            raise ConfigError(path, [_yaml_problem(error)]) from error
        except yaml.YAMLError as error:
            reason = MESSAGES("yaml.invalid", detail=str(error))
            raise ConfigError(path, [Problem(None, "", reason)]) from error

        secret_files: list[Path] = []
        if root is not None:
            environment = os.environ if variables is None else variables
            problems = _prepare_nodes(root, _Sources(environment, path.parent, secret_files))
            if problems:
                raise ConfigError(path, problems)

        try:
            data = _Loader("").construct_document(root) if root is not None else None
        except yaml.MarkedYAMLError as error:
            raise ConfigError(path, [_yaml_problem(error)]) from error
        return cls(path, data, root, secret_files=tuple(dict.fromkeys(secret_files)))

    def line_of(self, location: Location) -> int | None:
        """Return the 1-based line of the deepest node found along ``location``."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in location:
            if isinstance(node, yaml.MappingNode):
                found = _mapping_entry(node, str(part))
                if found is None:
                    break
                key_node, node = found
                line = key_node.start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def problem(self, location: Location, reason: str) -> Problem:
        """Return a problem at ``location``, naming the variable that set it if one did."""
        for overridden, variable in self.overrides.items():
            if location[: len(overridden)] == overridden:
                return Problem(None, format_location(location), reason, variable=variable)
        return Problem(self.line_of(location), format_location(location), reason)

    def error(self, location: Location, reason: str) -> ConfigError:
        return ConfigError(self.path, [self.problem(location, reason)])

    def validation_problems(self, error: ValidationError, prefix: Location = ()) -> list[Problem]:
        """Convert a pydantic error of a model built from data at ``prefix`` into problems."""
        problems = []
        for detail in error.errors():
            if repeats_item_errors(detail):
                continue
            location = prefix + tuple(part for part in detail["loc"] if part != "[key]")
            location = _written_location(self.data, location)
            problems.append(self.problem(location, pydantic_reason(detail, location)))
        return problems


class _InvalidDateError(yaml.constructor.ConstructorError):
    """An unquoted date that does not exist, such as 2027-02-30."""

    def __init__(self, node: yaml.ScalarNode, error: ValueError) -> None:
        super().__init__(None, None, f"invalid date {node.value!r} ({error})", node.start_mark)
        self.value = str(node.value)
        self.error = error


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reporting an impossible date such as 2027-02-30 with its line."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise _InvalidDateError(node, error) from error


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _written_location(data: Any, location: Location) -> Location:
    """Cut ``location`` where it indexes a value that is not a list in the file.

    A model may accept ``resource: cnc-1`` for ``resource: [cnc-1]``; an error about the id is
    then reported at ``resource``, as written, and not at ``resource[0]``.
    """
    node = data
    for position, part in enumerate(location):
        if isinstance(part, int) and not isinstance(node, list):
            return location[:position]
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return location
    return location


def format_location(location: Iterable[str | int]) -> str:
    """Return a key path such as ``adapters[0].url`` for the location ``("adapters", 0, "url")``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        reason = MESSAGES("file.not_found")
        raise ConfigError(path, [Problem(None, "", reason)]) from error
    except OSError as error:
        reason = MESSAGES("file.unreadable", detail=error.strerror)
        raise ConfigError(path, [Problem(None, "", reason)]) from error
    except UnicodeDecodeError as error:
        reason = MESSAGES("file.not_utf8", position=error.start)
        raise ConfigError(path, [Problem(None, "", reason)]) from error


def _yaml_problem(error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else None
    if isinstance(error, _InvalidDateError):
        reason = MESSAGES("yaml.invalid_date", value=error.value, error=error.error)
    else:
        reason = yaml_syntax_reason(error)
    return Problem(line, "", reason)


def _mapping_entry(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


@dataclass(frozen=True, slots=True)
class _Sources:
    """Sources of references: the variables, and the folder that relative secret files start at."""

    variables: Mapping[str, str]
    folder: Path
    secret_files: list[Path]
    """Collects the path of every secret file read."""


def _prepare_nodes(root: yaml.Node, sources: _Sources) -> list[Problem]:
    """Expand variables in string scalars and find duplicate keys, walking the tree once."""
    problems: list[Problem] = []
    visited: set[int] = set()

    def visit(node: yaml.Node, location: Location) -> None:
        # An alias shares its node with the anchor, which must be expanded only once.
        if id(node) in visited:
            return
        visited.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag == _STRING_TAG:
            node.value = _expand(node, location, sources, problems)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                visit(item, (*location, index))
        elif isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                if key in seen and key != _MERGE_KEY:
                    line = key_node.start_mark.line + 1
                    reason = MESSAGES("key.duplicate")
                    problems.append(Problem(line, format_location((*location, key)), reason))
                seen.add(key)
                visit(value_node, (*location, key))

    visit(root, ())
    return problems


def _expand(
    node: yaml.ScalarNode,
    location: Location,
    sources: _Sources,
    problems: list[Problem],
) -> str:
    def replace(match: re.Match[str]) -> str:
        file_name, name, default = match.group("file", "name", "default")
        try:
            if file_name is not None:
                text = read_secret_file(file_name, sources.folder)
                sources.secret_files.append(secret_file_path(file_name, sources.folder))
                return text
        except ValueError as error:
            problems.append(
                Problem(node.start_mark.line + 1, format_location(location), str(error))
            )
            return match.group(0)
        if name in sources.variables:
            return sources.variables[name]
        if default is not None:
            return str(default)
        reason = MESSAGES("variable.unset", name=name)
        problems.append(Problem(node.start_mark.line + 1, format_location(location), reason))
        return match.group(0)

    return _REFERENCE.sub(replace, str(node.value))


def read_secret_file(name: str, folder: Path) -> str:
    """Return the text of the secret file ``name`` without one trailing newline.

    A relative ``name`` starts at ``folder``. Raises ``ValueError`` with a user-facing reason
    that names the file, never its content, when the name is empty or the file is missing,
    unreadable, not UTF-8 or empty.
    """
    if not name.strip():
        raise ValueError(MESSAGES("secret.path_empty"))
    path = secret_file_path(name, folder)
    try:
        # Bytes, so that a "\r" in the secret is kept as written.
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as error:
        raise ValueError(MESSAGES("secret.not_found", path=path)) from error
    except IsADirectoryError as error:
        raise ValueError(MESSAGES("secret.directory", path=path)) from error
    except NotADirectoryError as error:
        reason = MESSAGES("secret.below_file", path=path, file=_file_in_path(path))
        raise ValueError(reason) from error
    except PermissionError as error:
        raise ValueError(MESSAGES("secret.permission_denied", path=path)) from error
    except OSError as error:
        raise ValueError(MESSAGES("secret.unreadable", path=path, detail=error.strerror)) from error
    except UnicodeDecodeError as error:
        raise ValueError(MESSAGES("secret.not_utf8", path=path)) from error

    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ValueError(MESSAGES("secret.empty", path=path))
    return text


def _file_in_path(path: Path) -> Path:
    """Return the first folder of ``path`` that is a file, or ``path``'s parent if none is."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


def secret_file_path(name: str, folder: Path) -> Path:
    """Return the path of the secret file ``name``; a relative ``name`` starts at ``folder``."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else folder / path
